#!/usr/bin/python3
"""report.py — the results table of the need-post benchmark (bench/run).

Reads the results file bench/run writes, one measurement a line, `kind key=value ...`:
  impactd open=N conns=C rps= p50_us= p99_us= requests= duration_us= non201= socket_errors=
          backlog= drain_s= impactd_cpu_us= redis_cpu_us=                      (wrk)
  bare conns=C rps= p50_us= p99_us= requests= ... bare_cpu_us=          (wrk, bare_evhttp)
  redis open=N conns=C rps= p50_us= p99_us= requests= redis_cpu_us= script_us= script_p50_us=
          script_p99_us=      (redis-benchmark EVALSHA; script_*: Redis' own timing of it)
  memory item=need|offer open=N count= bytes=                   (used_memory delta of a step)
  stream entries= bytes=                                        (MEMORY USAGE of the events)
backlog is what the notifier had not yet handled when wrk stopped, drain_s the seconds it
then took; *_cpu_us the CPU time (user + system) a process spent per request, drain
included. "sustained" is req/s with the drain time counted: the rate at which need-posts and
their notifications both keep up. A configuration measured several times shows the median of
each figure, and "spread" the range of its req/s over that median.

Then the two targets of the issue, read on the loaded runs (the most connections):
  p50 and p99 at the largest N within 1.3x of those at the smallest N;
  need-post req/s at least half the lower of the two references, at every N.
Owns nothing; stdlib only.
"""
import sys

LATENCY_TARGET = 1.3
THROUGHPUT_TARGET = 0.5


def median(vals):
    vals = sorted(vals)
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def merge(runs):
    """One row from the repeated runs of one configuration: the median of every figure."""
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, float) and k not in ('open', 'conns'):
            out[k] = median([r[k] for r in runs])
    out['runs'] = len(runs)
    if 'rps' in out:
        rps = [r['rps'] for r in runs]
        out['spread'] = (max(rps) - min(rps)) / out['rps'] * 100
    return out


def records(path):
    """The lines of a results file as dicts: 'kind', then each key=value (a number if it reads
    as one)."""
    with open(path, encoding='utf-8') as f:
        for line in f:
            kind, *fields = line.split()
            rec = {'kind': kind}
            for fld in fields:
                k, v = fld.split('=', 1)
                try:
                    rec[k] = float(v)
                except ValueError:
                    rec[k] = v
            yield rec


def parse(path):
    """One merged row per configuration (kind, open, conns, item)."""
    groups = {}
    for rec in records(path):
        key = (rec['kind'], rec.get('open'), rec.get('conns'), rec.get('item'))
        groups.setdefault(key, []).append(rec)
    return [merge(runs) for runs in groups.values()]


def pick(rows, kind, conns, n=None):
    for r in rows:
        if r['kind'] == kind and r['conns'] == conns and (n is None or r['open'] == n):
            return r
    sys.exit(f'report.py: no {kind} result for {conns} connections, {n} open items')


def sustained(r):
    return r['requests'] / (r['duration_us'] / 1e6 + r['drain_s'])


def verdict(ok):
    return 'met' if ok else 'NOT met'


def opt(r, key, width):
    return f'{r[key]:>{width}.0f}' if key in r else ' ' * width


HEAD = (f'{"configuration":<44}{"conns":>6}{"runs":>5}{"req/s":>8}{"spread":>7}{"p50 ms":>8}'
        f'{"p99 ms":>8}{"server":>8}{"redis":>7}{"backlog":>8}{"drain s":>8}{"sustained":>10}')


def row(name, r, server_cpu):
    spread = f'{r["spread"]:>6.0f}%' if r['runs'] > 1 else ' ' * 7
    print(f'{name:<44}{r["conns"]:>6.0f}{r["runs"]:>5.0f}{r["rps"]:>8.0f}{spread}'
          f'{r["p50_us"] / 1000:>8.2f}{r["p99_us"] / 1000:>8.2f}{opt(r, server_cpu, 8)}'
          f'{opt(r, "redis_cpu_us", 7)}'
          + (f'{r["backlog"]:>8.0f}{r["drain_s"]:>8.1f}{sustained(r):>10.0f}'
             if 'drain_s' in r else ''))


def main():
    rows = parse(sys.argv[1])
    sizes = sorted({r['open'] for r in rows if r['kind'] == 'impactd'})
    loaded = max(r['conns'] for r in rows if r['kind'] == 'impactd')
    solo = min(r['conns'] for r in rows if r['kind'] == 'impactd')

    print(f'{"":<86}{"CPU us/req":^15}')
    print(HEAD)
    for n in sizes:
        for c in (loaded, solo):
            row(f'impactd POST /v1/needs, {n:,.0f} open items', pick(rows, 'impactd', c, n),
                'impactd_cpu_us')
    for c in (loaded, solo):
        row('bare evhttp, same wrk load', pick(rows, 'bare', c), 'bare_cpu_us')
    for n in sizes:
        for c in (loaded, solo):
            row(f'redis-benchmark need_create, {n:,.0f} open', pick(rows, 'redis', c, n), '')
    wrk_rows = [r for r in rows if r['kind'] in ('impactd', 'bare')]
    bad = sum((r['non201'] + r['socket_errors']) * r['runs'] for r in wrk_rows)
    print(f'\nnon-201 answers and socket errors over all measured wrk runs: {bad:.0f}')

    bare = pick(rows, 'bare', loaded)
    print(f'\nratios at {loaded:.0f} connections' + ''.join(f'{n:>12,.0f}' for n in sizes))
    worst = None
    for label, ref in (('impactd / bare evhttp, req/s', lambda n: bare['rps']),
                       ('impactd / redis-benchmark, req/s',
                        lambda n: pick(rows, 'redis', loaded, n)['rps']),
                       ('impactd / lower reference, req/s',
                        lambda n: min(bare['rps'], pick(rows, 'redis', loaded, n)['rps']))):
        vals = [pick(rows, 'impactd', loaded, n)['rps'] / ref(n) for n in sizes]
        worst = min(vals)           # the last line's: the target's
        print(f'  {label:<34}' + ''.join(f'{v:>12.2f}' for v in vals))

    print(f'\nneed_create as Redis timed it, {loaded:.0f} connections (INFO commandstats and '
          'latencystats):')
    print(f'  {"":<34}' + ''.join(f'{n:>12,.0f}' for n in sizes))
    for label, key in (('mean us per call', 'script_us'), ('p50 us', 'script_p50_us'),
                       ('p99 us', 'script_p99_us')):
        vals = [pick(rows, 'redis', loaded, n).get(key) for n in sizes]
        print(f'  {label:<34}' + ''.join(f'{v:>12.1f}' if v is not None else f'{"?":>12}'
                                         for v in vals))

    print('\nRedis memory (used_memory delta of each population step):')
    for r in sorted((r for r in rows if r['kind'] == 'memory'), key=lambda r: (r['item'], r['open'])):
        print(f'  {r["item"]:<6} step to {r["open"]:>9,.0f} open items: {r["count"]:>8,.0f} '
              f'added, {r["bytes"] / r["count"]:>5.0f} bytes per open {r["item"]}')
    stream = next((r for r in rows if r['kind'] == 'stream'), None)
    if stream and stream['entries']:
        print(f'  events stream: {stream["entries"]:,.0f} entries, '
              f'{stream["bytes"] / stream["entries"]:.0f} bytes per entry '
              '(capped near 1,000,000 entries; a matched need-post adds 2)')

    lo, hi = sizes[0], sizes[-1]
    print(f'\nlatency at {hi:,.0f} / at {lo:,.0f} open items:')
    growth = {}
    for c in (loaded, solo):
        a, b = pick(rows, 'impactd', c, lo), pick(rows, 'impactd', c, hi)
        growth[c] = (b['p50_us'] / a['p50_us'], b['p99_us'] / a['p99_us'])
        print(f'  {c:>3.0f} connections: p50 {growth[c][0]:.2f}x, p99 {growth[c][1]:.2f}x')
    print(f'target 1, latency at {loaded:.0f} connections within {LATENCY_TARGET}x: '
          f'{verdict(max(growth[loaded]) <= LATENCY_TARGET)}')
    print(f'target 2, need-post req/s >= {THROUGHPUT_TARGET} x the lower reference at every '
          f'size (worst {worst:.2f}): {verdict(worst >= THROUGHPUT_TARGET)}')


if __name__ == '__main__':
    main()
