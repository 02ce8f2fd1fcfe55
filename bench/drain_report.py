#!/usr/bin/python3
"""drain_report.py — the tables of the delivery-pipeline benchmark (bench/drain).

    drain_report.py RESULTS ARRIVALS MAKER_PORT HOSPITAL_PORT CLK_TCK

RESULTS has one measurement a line, `kind key=value ...`:
  sign bytes= ed25519_per_s= hmac_per_s=                        (bench/sign_rate)
  drain mode= round= needs= posted= non201= post_rate= pairs= moved= shift_ms= from= to=
        waited_s= stopped_short= metric_delivered= impactd_ticks= redis_ticks=
        receiver_ticks= script_cmd= script_calls= script_us_total= ... pace=<file,...> load=
                                                                 (one drain of bench/drain)
(posted: need-posts answered 201 while the backlog was built; moved: the deliveries
make_backlog_due made due; from, to: the receiver's count of POSTs when the backlog was
made due and when the wait ended, i.e. the drain's lines of ARRIVALS). A drain's pace files
have one line per need-post (bench/pace: due, sent, answered µs, status, allocation id);
ARRIVALS one line per webhook received (bench/receiver: arrival µs, port, webhook-id, type,
data.id, bytes). A drain's webhooks are its lines of ARRIVALS; a webhook-id received twice
(a retry of an attempt whose answer was lost) counts once.

Per drain: deliveries/s over first to last arrival (webhooks / (last - first)), and steady
(the arrivals between the 10th and the 90th percent, over the time between them); CPU µs
per delivery of impactd, Redis and the receiver over the drain; Redis script calls and time
per delivery; the checks (every webhook arrived once, each of this drain's allocations one
per side, impactd_webhooks_delivered_total grew by as many). Then the medians over the
rounds per mode, the signing bound (a message made earlier is signed once per attempt: one
Ed25519 and one HMAC) and issue 9's target: at least 10,000 signed deliveries per second.
Owns nothing; stdlib only.
"""
import math
import sys

from report import MODE_TITLES, median, records

DELIVERY_TARGET = 10_000    # signed deliveries per second (issue 9)


def read_lines(path):
    with open(path, encoding='utf-8') as f:
        return f.readlines()


def allocations(pace_files):
    out = set()
    for path in pace_files.split(','):
        with open(path, encoding='utf-8') as f:
            for line in f:
                _due, _sent, _done, status, alloc = line.split()
                if status == '201' and alloc != '-':
                    out.add(alloc)
    return out


def analyse(d, lines, ports, tick_us):
    allocs = allocations(d['pace'])
    seen, times, per_port, foreign, types = set(), [], {p: 0 for p in ports}, 0, set()
    for line in lines[int(d['from']):int(d['to'])]:
        t, port, wid, typ, data_id, _bytes = line.split()
        if wid in seen:
            continue
        seen.add(wid)
        times.append(int(t))
        types.add(typ)
        if data_id not in allocs:
            foreign += 1
        per_port[port] = per_port.get(port, 0) + 1
    times.sort()
    n = len(times)
    out = dict(d)
    out.update(expected=2 * len(allocs), arrived=n, dups=int(d['to'] - d['from']) - n,
               foreign=foreign, types=','.join(sorted(types)),
               sides_ok=all(per_port.get(p, 0) == len(allocs) for p in ports))
    out['all_rate'] = n / ((times[-1] - times[0]) / 1e6) if n > 1 and times[-1] > times[0] else math.nan
    if n >= 10:
        lo, hi = math.ceil(0.1 * n) - 1, math.ceil(0.9 * n) - 1
        span = (times[hi] - times[lo]) / 1e6
        out['steady_rate'] = (hi - lo) / span if span > 0 else math.nan
    else:
        out['steady_rate'] = math.nan
    out['span_s'] = (times[-1] - times[0]) / 1e6 if n > 1 else math.nan
    for proc in ('impactd', 'redis', 'receiver'):
        out[proc + '_us'] = d[proc + '_ticks'] * tick_us / n if n else math.nan
    out['calls'] = d.get('script_calls', 0) / n if n else math.nan
    out['script_us_per'] = d.get('script_us_total', 0) / n if n else math.nan
    out['ok'] = (n == out['expected'] == d['metric_delivered'] and foreign == 0 and out['sides_ok']
                 and not d['stopped_short'] and d['non201'] == 0)
    return out


def num(v, width, fmt='.0f'):
    return f'{"-":>{width}}' if isinstance(v, float) and math.isnan(v) else f'{v:>{width}{fmt}}'


def med(vals):
    vals = [v for v in vals if not math.isnan(v)]
    return median(vals) if vals else math.nan


def main():
    results, arrivals, mport, hport, clk = sys.argv[1:6]
    tick_us = 1e6 / float(clk)
    rows = list(records(results))
    lines = read_lines(arrivals)
    sign = next(r for r in rows if r['kind'] == 'sign')
    # one Ed25519 (v1a) and one HMAC (v1) per attempt: the inbox signature was made with the
    # message, before the backlog became due
    bound = 1 / (1 / sign['ed25519_per_s'] + 1 / sign['hmac_per_s'])
    drains = [analyse(r, lines, (mport, hport), tick_us) for r in rows if r['kind'] == 'drain']
    modes = sorted(dict.fromkeys(d['mode'] for d in drains), key=lambda m: (m != 'pinned', m))

    print(f'signing reference, libsodium on one core, {sign["bytes"]:.0f} bytes signed: '
          f'Ed25519 {sign["ed25519_per_s"]:,.0f}/s, HMAC-SHA256 {sign["hmac_per_s"]:,.0f}/s')
    print(f'  the signing bound of a drain: one Ed25519 and one HMAC per delivery (the inbox '
          f'signature was made with the message) -> {bound:,.0f} deliveries/s per core\n')
    rates = {}
    for mode in modes:
        ds = [d for d in drains if d['mode'] == mode]
        print(f'== {MODE_TITLES.get(mode, mode)} ==')
        print(f'{"":<4}{"backlog":>24}{"webhooks":>27}{"deliveries/s":>19}{"":>7}'
              f'{"CPU us/delivery":>25}{"Redis scripts":>18}')
        print(f'{"rnd":<4}{"posts":>7}{"posts/s":>8}{"made due":>9}{"expected":>9}{"arrived":>9}'
              f'{"metric":>9}{"all":>9}{"10-90%":>10}{"span s":>7}{"impactd":>9}{"redis":>8}'
              f'{"recv":>8}{"calls":>8}{"us":>7}{"ok":>5}{"load":>6}')
        for d in ds:
            print(f'{d["round"]:<4.0f}{d["posted"]:>7.0f}{d["post_rate"]:>8.0f}{d["moved"]:>9.0f}'
                  f'{d["expected"]:>9}{d["arrived"]:>9}{d["metric_delivered"]:>9.0f}'
                  f'{num(d["all_rate"], 9)}{num(d["steady_rate"], 10)}{num(d["span_s"], 7, ".1f")}'
                  f'{num(d["impactd_us"], 9)}{num(d["redis_us"], 8)}{num(d["receiver_us"], 8)}'
                  f'{num(d["calls"], 8, ".3f")}{num(d["script_us_per"], 7, ".1f")}'
                  f'{"yes" if d["ok"] else "NO":>5}{d.get("load", math.nan):>6.2f}')
            if not d['ok']:
                print(f'    not ok: {d["arrived"]} of {d["expected"]} arrived, metric '
                      f'{d["metric_delivered"]:.0f}, {d["foreign"]} not of this drain, one per side: '
                      f'{d["sides_ok"]}, stopped short: {d["stopped_short"]:.0f}, non-201 posts: '
                      f'{d["non201"]:.0f}')
        rates[mode] = med([d['all_rate'] for d in ds])
        print(f'\nmedians over {len(ds)} rounds, {mode}: {rates[mode]:,.0f} deliveries/s first to last '
              f'arrival, {med([d["steady_rate"] for d in ds]):,.0f}/s steady (10-90 %); CPU per '
              f'delivery impactd {med([d["impactd_us"] for d in ds]):.1f} us, Redis '
              f'{med([d["redis_us"] for d in ds]):.1f} us, receiver {med([d["receiver_us"] for d in ds]):.1f} us; '
              f'{med([d["calls"] for d in ds]):.3f} script calls ({med([d["script_us_per"] for d in ds]):.1f} us) '
              f'per delivery; {rates[mode] / bound:.2f} of the signing bound; '
              f'{sum(d["dups"] for d in ds)} duplicate arrivals; all checks passed: '
              f'{"yes" if all(d["ok"] for d in ds) else "NO"}\n')
    print('  all = webhooks / (last - first arrival); 10-90% = the arrivals between the 10th and '
          'the 90th percent over the time between them; metric = the growth of '
          'impactd_webhooks_delivered_total over the drain; made due = the members '
          'make_backlog_due moved; CPU: user + system over the drain (Redis from just after the '
          'backlog was made due), per delivery; scripts: EVALSHA or FCALL calls and their time '
          'per delivery; ok = every webhook arrived once, each of the drain\'s allocations one '
          'per side, the metric agrees, nothing stopped short; load: 1-minute load average at '
          'the end of the drain.')
    print('\ntarget (issue 9):')
    first = modes[0]
    others = ''.join(f' ({m}: {rates[m]:,.0f}/s)' for m in modes[1:])
    ok = rates[first] >= DELIVERY_TARGET
    print(f'  signed webhook deliveries >= {DELIVERY_TARGET:,}/s, {first}, draining a backlog: '
          f'{rates[first]:,.0f}/s -> {"met" if ok else "NOT met"}{others}')


if __name__ == '__main__':
    main()
