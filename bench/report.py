#!/usr/bin/python3
"""report.py — the tables of the v2 benchmark (bench/run): medians, ratios, targets.

    report.py RESULTS

RESULTS has one measurement a line, `kind key=value ...` (bench/run writes it):
  run mode= open= round= target=impactd|bare|evalsha what=needs|me|feed-json|feed-csv
      conns= requests= duration_us= rps= p50_us= p99_us= non<status>= socket_errors=
      server_cpu_us= [redis_cpu_us=]                                   (one wrk run)
      impactd needs also: backlog= drain_s= script_cmd= script_calls= script_us_total=
      script_us= script_p50_us= script_p99_us= allocations=
  rb mode= open= round= target=redis-benchmark|replay what=needs conns= rps= p50_us=
      p99_us= requests= redis_cpu_us= script_cmd= script_calls= script_us= script_p50_us=
      script_p99_us=     (redis-benchmark or bench/replay of the captured need-post call)
  memory item=participant|need|offer open= count= used_delta= streams_delta= entries_delta=
      [added_delta=] requests= duration_us= rate= [script_*=]
                                                   (one population step, through the API)
  feedsize open= json_bytes= csv_bytes=
  stream open=N|end used= streams_bytes= streams_entries=
backlog is what the notifier had not handled when wrk stopped, drain_s the seconds it then
took. A need-post's figure is **sustained**: requests / (duration + drain), the rate at
which need-posts and the notifications they cause both keep up; the CPU and script columns
count the drain too. *_cpu_us is CPU time (user + system) per request. Every figure is the
median over the rounds; spread is (max - min) / median of the req/s.

The targets of issue 9: the need-post's p50 and p99 at the largest size within 1.3x of
those at the smallest (pinned, 32 connections); Redis memory per open need and per open
offer at most 400 B (the step to the largest size: the largest count, judged only from
100,000 items up); webhook deliveries are bench/notify's. Owns nothing; stdlib only.
"""
import sys

LATENCY_TARGET = 1.3
MEMORY_TARGET = 400
MEMORY_MIN_COUNT = 100_000  # a smaller step is within the noise of used_memory (client buffers,
                            # allocator): its per-item figure is shown but not judged
TITLES = {
    ('impactd', 'needs'): 'impactd POST /v1/needs (matched)',
    ('impactd', 'me'): 'impactd GET /v1/me',
    ('impactd', 'feed-json'): 'impactd GET stock feed JSON',
    ('impactd', 'feed-csv'): 'impactd GET stock feed CSV',
    ('bare', 'needs'): 'bare evhttp, need-post answer bytes',
    ('bare', 'feed-json'): 'bare evhttp, same feed JSON bytes',
    ('bare', 'feed-csv'): 'bare evhttp, same feed CSV bytes',
    ('evalsha', 'needs'): 'evhttp + JSON + one EVALSHA',
    ('redis-benchmark', 'needs'): 'redis-benchmark, need-post call',
    ('replay', 'needs'): 'bench/replay, need-post call',
}
MODE_TITLES = {
    'pinned': 'pinned: impactd and redis-server on one core, the load on the other',
    'unpinned': 'unpinned: every process on every core',
}


def median(vals):
    vals = sorted(vals)
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def records(path):
    """The lines of a results file as dicts: 'kind', then each key=value (a number if it
    reads as one)."""
    with open(path, encoding='utf-8') as f:
        for line in f:
            if not line.strip():
                continue
            kind, *fields = line.split()
            rec = {'kind': kind}
            for fld in fields:
                k, v = fld.split('=', 1)
                try:
                    rec[k] = float(v)
                except ValueError:
                    rec[k] = v
            yield rec


def derive(r):
    """Per-run figures computed before the medians are taken."""
    if r.get('target') == 'impactd' and r.get('what') == 'needs':
        r['sustained'] = r['requests'] / (r['duration_us'] / 1e6 + r['drain_s'])
        r['script_per_req'] = r['script_us_total'] / r['requests'] if r['requests'] else 0
        r['calls_per_req'] = r['script_calls'] / r['requests'] if r['requests'] else 0
    r.setdefault('sustained', r['rps'])
    for k in list(r):
        if k.startswith('non') and k[3:].isdigit():
            r['bad'] = r[k] + r.get('socket_errors', 0)
    return r


def merge(runs):
    """One row from the rounds of one configuration: the median of every number."""
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, float) and k not in ('open', 'conns', 'round'):
            out[k] = median([r[k] for r in runs if k in r])
    out['runs'] = len(runs)
    rps = [r['sustained'] for r in runs]
    out['spread'] = (max(rps) - min(rps)) / out['sustained'] * 100 if out['sustained'] else 0
    out['bad_total'] = sum(r.get('bad', 0) for r in runs)
    return out


def table(rows, sizes, modes):
    """Medians keyed by (mode, open, target, what)."""
    groups = {}
    for r in rows:
        if r['kind'] in ('run', 'rb'):
            groups.setdefault((r['mode'], r['open'], r['target'], r['what']), []).append(derive(r))
    return {k: merge(v) for k, v in groups.items()}


def fmt(v, width, digits=0):
    if v is None:
        return f'{"-":>{width}}'
    return f'{v:>{width},.{digits}f}'


def print_mode(med, mode, sizes, rb_cmd):
    print(f'== {MODE_TITLES.get(mode, mode)} ==')
    print(f'{"":<48}{"":>7}{"":>5}{"req/s":>9}{"":>7}{"":>8}{"":>8}{"CPU us/req":^14}'
          f'{"notifier":^16}{"Redis script":^16}')
    print(f'{"configuration":<40}{"open":>8}{"conns":>7}{"runs":>5}{"req/s":>9}{"spread":>7}'
          f'{"p50 ms":>8}{"p99 ms":>8}{"server":>7}{"redis":>7}{"backlog":>8}{"drain s":>8}'
          f'{"us/req":>8}{"calls":>8}')
    order = [('impactd', 'needs'), ('impactd', 'me'), ('impactd', 'feed-json'),
             ('impactd', 'feed-csv'), ('bare', 'needs'), ('bare', 'feed-json'),
             ('bare', 'feed-csv'), ('evalsha', 'needs'), ('redis-benchmark', 'needs'),
             ('replay', 'needs')]
    for target, what in order:
        for n in sizes:
            r = med.get((mode, n, target, what))
            if not r:
                continue
            notifier = (fmt(r['backlog'], 8) + fmt(r['drain_s'], 8, 2)
                        if 'drain_s' in r else ' ' * 16)
            if 'script_per_req' in r:
                script = fmt(r['script_per_req'], 8) + fmt(r['calls_per_req'], 8, 1)
            elif target in ('redis-benchmark', 'replay') and r.get('script_us'):
                script = fmt(r['script_us'], 8) + fmt(1, 8, 1)
            else:
                script = ''
            name = TITLES[(target, what)]
            print(f'{name:<40}{n:>8,.0f}{r["conns"]:>7.0f}{r["runs"]:>5.0f}'
                  f'{r["sustained"]:>9,.0f}{r["spread"]:>6.0f}%'
                  f'{r["p50_us"] / 1000:>8.2f}{r["p99_us"] / 1000:>8.2f}'
                  f'{fmt(r.get("server_cpu_us"), 7)}{fmt(r.get("redis_cpu_us"), 7)}'
                  f'{notifier}{script}')
    print('  impactd POST /v1/needs req/s is sustained: requests / (wrk duration + the '
          'notifier\'s drain); its CPU and script columns count the drain.')
    print(f'  bench/replay (and redis-benchmark, when the arguments fit a command line) replay '
          f'{rb_cmd} as captured, 32 clients with one call in flight each; script us is '
          'Redis\' usec_per_call.')


def ratio(med, mode, n, a, b):
    ra, rb = med.get((mode, n, *a)), med.get((mode, n, *b))
    return ra['sustained'] / rb['sustained'] if ra and rb and rb['sustained'] else None


def print_ratios(med, mode, sizes):
    print(f'\nratios, {mode} (req/s over req/s, medians){"":<6}' +
          ''.join(f'{n:>12,.0f}' for n in sizes))
    lines = [
        ('need-post sustained / bare evhttp', ('impactd', 'needs'), ('bare', 'needs')),
        ('need-post sustained / evhttp+JSON+EVALSHA', ('impactd', 'needs'), ('evalsha', 'needs')),
        ('need-post sustained / redis-benchmark of its call', ('impactd', 'needs'),
         ('redis-benchmark', 'needs')),
        ('need-post sustained / bench/replay of its call', ('impactd', 'needs'),
         ('replay', 'needs')),
        ('GET /v1/me / bare evhttp', ('impactd', 'me'), ('bare', 'needs')),
        ('feed JSON / bare evhttp, same bytes', ('impactd', 'feed-json'), ('bare', 'feed-json')),
        ('feed CSV / bare evhttp, same bytes', ('impactd', 'feed-csv'), ('bare', 'feed-csv')),
        ('evhttp+JSON+EVALSHA / bare evhttp', ('evalsha', 'needs'), ('bare', 'needs')),
    ]
    for label, a, b in lines:
        vals = [ratio(med, mode, n, a, b) for n in sizes]
        if any(v is not None for v in vals):
            print(f'  {label:<50}' + ''.join(fmt(v, 12, 3) for v in vals))


def latency_growth(med, mode, lo, hi):
    a, b = med.get((mode, lo, 'impactd', 'needs')), med.get((mode, hi, 'impactd', 'needs'))
    if not a or not b:
        return None
    return b['p50_us'] / a['p50_us'], b['p99_us'] / a['p99_us']


def verdict(ok):
    return 'met' if ok else 'NOT met'


def main():
    rows = list(records(sys.argv[1]))
    runs = [r for r in rows if r['kind'] in ('run', 'rb')]
    sizes = sorted({r['open'] for r in runs})
    modes = list(dict.fromkeys(r['mode'] for r in runs))
    modes.sort(key=lambda m: (m != 'pinned', m))
    rb_cmd = next((r.get('script_cmd', '?') for r in rows if r['kind'] == 'rb'), '?').upper()
    rb_cmd = 'its ' + rb_cmd + ' call'
    med = table(rows, sizes, modes)
    for mode in modes:
        print_mode(med, mode, sizes, rb_cmd)
        print_ratios(med, mode, sizes)
        print()
    bad = sum(r['bad_total'] for r in med.values())
    print(f'non-2xx answers and socket errors over all measured wrk runs: {bad:.0f}')

    lo, hi = sizes[0], sizes[-1]
    print(f'\nneed-post latency at {hi:,.0f} / at {lo:,.0f} open items (wrk, '
          f'{runs[0]["conns"]:.0f} connections, medians):')
    growth = {}
    for mode in modes:
        growth[mode] = latency_growth(med, mode, lo, hi)
        if growth[mode]:
            a, b = med[(mode, lo, 'impactd', 'needs')], med[(mode, hi, 'impactd', 'needs')]
            print(f'  {mode:<9} p50 {a["p50_us"] / 1000:.2f} -> {b["p50_us"] / 1000:.2f} ms '
                  f'({growth[mode][0]:.2f}x), p99 {a["p99_us"] / 1000:.2f} -> '
                  f'{b["p99_us"] / 1000:.2f} ms ({growth[mode][1]:.2f}x)')

    print('\nRedis memory (INFO used_memory delta of each population step, less the events '
          'streams\' growth over it):')
    mem = [r for r in rows if r['kind'] == 'memory']
    per = {}
    for r in sorted(mem, key=lambda r: (r['item'] != 'participant', r['item'], r['open'])):
        item_bytes = (r['used_delta'] - r['streams_delta']) / r['count']
        if r['item'] != 'participant':
            per[r['item']] = (item_bytes, r['count'])   # the last step (the largest) wins
        where = 'participants' if r['item'] == 'participant' else f'step to {r["open"]:>9,.0f} open'
        # trimmed at the cap meanwhile: the net growth is still what the step cost the
        # streams, but not a cost per entry
        trimmed = r['entries_delta'] < r.get('added_delta', r['count'])
        if r['item'] == 'participant' or r['entries_delta'] <= 0:
            stream = ''
        elif trimmed:
            stream = (f'; streams +{r.get("added_delta", r["count"]):,.0f} entries, trimmed at '
                      'their cap (net growth subtracted)')
        else:
            stream = (f'; streams +{r["entries_delta"]:,.0f} entries, '
                      f'{r["streams_delta"] / r["entries_delta"]:,.0f} B each')
        script = (f' (Redis scripts {r["script_us_total"] / r["count"]:,.0f} us per post)'
                  if r.get('script_us_total') and r['item'] != 'participant' else '')
        print(f'  {r["item"]:<11} {where:<24} {r["count"]:>9,.0f} posted at {r["rate"]:>6,.0f}/s'
              f'{script} through the API: {item_bytes:>6,.0f} B each{stream}')
    end = next((r for r in rows if r['kind'] == 'stream' and r['open'] == 'end'), None)
    if end and end['streams_entries']:
        print(f'  events streams at the end: {end["streams_entries"]:,.0f} entries, '
              f'{end["streams_bytes"] / 1e6:,.0f} MB, {end["streams_bytes"] / end["streams_entries"]:,.0f} '
              'B per entry (capped per market by events_retention; every post adds one, a '
              'matched need-post two)')
    for r in sorted((r for r in rows if r['kind'] == 'feedsize'), key=lambda r: r['open']):
        print(f'stock feed at {r["open"]:>9,.0f} open items: JSON {r["json_bytes"]:,.0f} B, '
              f'CSV {r["csv_bytes"]:,.0f} B (national, 342 rows)')

    print('\ntargets (issue 9):')
    first = modes[0]
    g = growth.get(first)
    if g:
        print(f'  need-post p50 and p99 at {hi:,.0f} within {LATENCY_TARGET}x of {lo:,.0f} '
              f'open items, {first}: p50 {g[0]:.2f}x, p99 {g[1]:.2f}x -> '
              f'{verdict(max(g) <= LATENCY_TARGET)}'
              + ''.join(f' ({m}: p50 {growth[m][0]:.2f}x, p99 {growth[m][1]:.2f}x)'
                        for m in modes[1:] if growth.get(m)))
    for item in ('need', 'offer'):
        if item in per:
            nbytes, count = per[item]
            judged = (verdict(nbytes <= MEMORY_TARGET) if count >= MEMORY_MIN_COUNT else
                      f'not judged: a step of {count:,.0f} is too small to tell (at least '
                      f'{MEMORY_MIN_COUNT:,} needed)')
            print(f'  Redis memory per open {item} <= {MEMORY_TARGET} B: {nbytes:,.0f} B -> {judged}')
    print('  signed webhook deliveries >= 10,000/s: see bench/notify')


if __name__ == '__main__':
    main()
