#!/usr/bin/python3
"""feeds_report.py — the results table of the stock feed benchmark (bench/feeds).

Reads the results file bench/feeds writes, one measurement a line, `kind key=value ...`:
  json|csv open=N conns=C rps= p50_us= p99_us= requests= duration_us= non200= socket_errors=
          server_cpu_us= redis_cpu_us=                  (wrk, GET /v1/feeds/stock[?format=csv])
  bare-json|bare-csv|nodelay-json|nodelay-csv conns=C rps= ... server_cpu_us=
                      (wrk, bare_evhttp answering the same bytes; nodelay: with TCP_NODELAY)
  size open=N json_bytes= csv_bytes=                    (the answers' sizes)
Figures of repeated runs are merged as bench/report.py does (the median of each, the spread
of req/s), and its row layout is reused. Then the issue's target, read on the loaded runs
(the most connections): p99 at the largest N within 1.3x of p99 at the smallest N, for each
format. Owns nothing; stdlib only.
"""
import sys

from report import HEAD, parse, pick, row, verdict

P99_TARGET = 1.3


def main():
    rows = parse(sys.argv[1])
    sizes = sorted({r['open'] for r in rows if r['kind'] == 'json'})
    conns = max(r['conns'] for r in rows if r['kind'] == 'json')
    solo = min(r['conns'] for r in rows if r['kind'] == 'json')
    refs = (('bare', 'bare evhttp, same {} bytes'), ('nodelay', 'bare evhttp + TCP_NODELAY, same {} bytes'))
    head = HEAD[:HEAD.index('backlog')]
    print(f'{"":<86}{"CPU us/req":^15}')
    print(head)
    for fmt in ('json', 'csv'):
        for n in sizes:
            for c in (conns, solo):
                row(f'impactd GET stock feed {fmt}, {n:,.0f} open', pick(rows, fmt, c, n),
                    'server_cpu_us')
        for kind, name in refs:
            for c in (conns, solo):
                row(name.format(fmt), pick(rows, f'{kind}-{fmt}', c), 'server_cpu_us')
    wrk_rows = [r for r in rows if r['kind'] in
                ('json', 'csv') + tuple(f'{k}-{f}' for k, _ in refs for f in ('json', 'csv'))]
    bad = sum((r['non200'] + r['socket_errors']) * r['runs'] for r in wrk_rows)
    print(f'\nnon-200 answers and socket errors over all measured wrk runs: {bad:.0f}')
    for r in sorted((r for r in rows if r['kind'] == 'size'), key=lambda r: r['open']):
        print(f'answer at {r["open"]:>9,.0f} open items: JSON {r["json_bytes"]:,.0f} bytes, '
              f'CSV {r["csv_bytes"]:,.0f} bytes')

    lo, hi = sizes[0], sizes[-1]
    label = f'at {conns:.0f} connections'
    print(f'\n{label:<38}{"JSON":>10}{"CSV":>10}')
    lines = {
        'impactd / bare evhttp, req/s':
            lambda f: pick(rows, f, conns, hi)['rps'] / pick(rows, 'bare-' + f, conns)['rps'],
        'impactd / bare + TCP_NODELAY, req/s':
            lambda f: pick(rows, f, conns, hi)['rps'] / pick(rows, 'nodelay-' + f, conns)['rps'],
        f'req/s at {hi:,.0f} / at {lo:,.0f}':
            lambda f: pick(rows, f, conns, hi)['rps'] / pick(rows, f, conns, lo)['rps'],
        f'p50 at {hi:,.0f} / at {lo:,.0f}':
            lambda f: pick(rows, f, conns, hi)['p50_us'] / pick(rows, f, conns, lo)['p50_us'],
        f'p99 at {hi:,.0f} / at {lo:,.0f}':
            lambda f: pick(rows, f, conns, hi)['p99_us'] / pick(rows, f, conns, lo)['p99_us'],
    }
    for label, ratio in lines.items():
        print(f'  {label:<36}{ratio("json"):>10.2f}{ratio("csv"):>10.2f}')
    print(f'with one connection{"":<19}{"JSON":>10}{"CSV":>10}')
    for q in ('p50', 'p99'):
        vals = [pick(rows, f, solo, hi)[q + '_us'] / pick(rows, f, solo, lo)[q + '_us']
                for f in ('json', 'csv')]
        label = f'{q} at {hi:,.0f} / at {lo:,.0f}'
        print(f'  {label:<36}{vals[0]:>10.2f}{vals[1]:>10.2f}')
    p99 = lines[f'p99 at {hi:,.0f} / at {lo:,.0f}']
    for fmt in ('json', 'csv'):
        print(f'target, {fmt} p99 at {hi:,.0f} open items within {P99_TARGET}x of that at '
              f'{lo:,.0f} ({p99(fmt):.2f}x): {verdict(p99(fmt) <= P99_TARGET)}')


if __name__ == '__main__':
    main()
