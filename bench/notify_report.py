#!/usr/bin/python3
"""notify_report.py — the tables of the v2 notification benchmark (bench/notify).

    notify_report.py RESULTS ARRIVALS HOSPITAL_PORT MAKER_PORT CLK_TCK

RESULTS has one measurement a line, `kind key=value ...`:
  sign bytes= ed25519_per_s= hmac_per_s=                        (bench/sign_rate)
  phase mode= round= name= target= count= requests= answered= non201= duration_us= rate=
        max_lag_us= pace=<file> waited_s= stopped_short= metric_delivered= impactd_ticks=
        redis_ticks= receiver_ticks= script_cmd= script_calls= script_us_total= ...
                                                                 (one phase of bench/notify)
(target: the need-posts per second asked for, 0 for as many as go; rate: bench/pace's
answers per second). A phase's pace file has one line per need-post (bench/pace:
due, sent, answered µs, status, allocation id); ARRIVALS one line per webhook received
(bench/receiver: arrival µs, port, webhook-id, type, data.id, bytes), both CLOCK_MONOTONIC.
A phase's webhooks are those whose data.id is one of its allocations; a webhook-id
received twice (a retry of a delivery whose answer was lost) counts once.

Prints the signing reference, then per mode (pinned first) one row per phase and round
(need-posts, webhooks, delivery rates, the CPU time impactd, Redis and the receiver spent
over the phase per need-post) and, per phase, the time from each need-post's send to the
later of its two webhooks (one per side; the first arrival on each side), with the ones
that never arrived counted as infinitely late, so that a percentile they reach reads
"missing"; then the medians over the rounds and the target of issue 9: at least 10,000
signed deliveries per second (burst, first to last webhook). Owns nothing; stdlib only.
"""
import math
import sys

from report import MODE_TITLES, median, records

ED25519_PER_DELIVERY = 2    # one when the message is made (inbox), one at the attempt (v1a)
DELIVERY_TARGET = 10_000    # signed deliveries per second (issue 9)


def read_arrivals(path):
    """data.id -> [(arrival µs, port, webhook-id)]"""
    by_alloc = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            t, port, wid, _type, data_id, _bytes = line.split()
            by_alloc.setdefault(data_id, []).append((int(t), port, wid))
    return by_alloc


def percentile(sorted_vals, q):
    """Nearest rank; sorted_vals may end with math.inf."""
    if not sorted_vals:
        return math.nan
    return sorted_vals[max(0, math.ceil(q * len(sorted_vals)) - 1)]


def ms(v):
    return 'missing' if v == math.inf else f'{v / 1000:.1f}'


def per_s(n, us):
    return n / (us / 1e6) if us > 0 else math.nan


def analyse(ph, by_alloc, ports, tick_us):
    sends = {}                  # allocation id -> sent µs
    answers = []
    post_start, post_end = math.inf, 0
    with open(ph['pace'], encoding='utf-8') as f:
        for line in f:
            due, sent, done, status, alloc = line.split()
            post_start, post_end = min(post_start, int(sent)), max(post_end, int(done))
            if status == '201' and alloc != '-':
                sends[alloc] = int(sent)
                answers.append(int(done) - int(due))
    seen, times, lat = set(), [], []
    for alloc, sent in sends.items():
        first = {}
        for t, port, wid in by_alloc.get(alloc, ()):
            if wid not in seen:
                seen.add(wid)
                times.append(t)
            first[port] = min(t, first.get(port, t))
        lat.append(max(first[p] for p in ports) - sent if all(p in first for p in ports)
                   else math.inf)
    times.sort()
    lat.sort()
    answers.sort()
    out = dict(ph)
    n = len(times)
    out.update(expected=2 * len(sends), arrived=n, missing=2 * len(sends) - n,
               complete=sum(v != math.inf for v in lat), allocs=len(sends), lat=lat,
               answer_p50=percentile(answers, 0.5), answer_p99=percentile(answers, 0.99))
    out['all_rate'] = per_s(n, times[-1] - times[0]) if n > 1 else math.nan
    during = sum(t <= post_end for t in times)
    out['during_rate'] = per_s(during, post_end - post_start)
    out['after_rate'] = per_s(n - during, times[-1] - post_end) if n - during > 1 else math.nan
    for proc in ('impactd', 'redis', 'receiver'):
        out[proc + '_us'] = ph[proc + '_ticks'] * tick_us / len(sends) if sends else math.nan
    return out


def num(v, width):
    """v without decimals in width columns; '-' when there is no value."""
    return f'{"-":>{width}}' if math.isnan(v) else f'{v:>{width}.0f}'


def asked(p):
    return 'max' if p['target'] == 0 else f'{p["target"]:.0f}'


def print_phases(phases):
    print(f'{"":<14}{"need-posts":>27}{"webhooks":>26}{"deliveries/s":>28}{"CPU us/need-post":>25}')
    print(f'{"phase":<10}{"rnd":>4}{"asked/s":>8}{"count":>7}{"got/s":>7}{"non201":>7}'
          f'{"expected":>9}{"arrived":>9}{"metric":>8}'
          f'{"all":>8}{"posting":>9}{"after":>8}{"wait s":>7}'
          f'{"impactd":>9}{"redis":>8}{"recv":>8}')
    for p in phases:
        wait = f'{p["waited_s"]:.0f}' + ('*' if p['stopped_short'] else '')
        print(f'{p["name"]:<10}{p["round"]:>4.0f}{asked(p):>8}{p["count"]:>7.0f}{p["rate"]:>7.0f}'
              f'{p["non201"]:>7.0f}{p["expected"]:>9}{p["arrived"]:>9}{p["metric_delivered"]:>8.0f}'
              f'{num(p["all_rate"], 8)}{num(p["during_rate"], 9)}{num(p["after_rate"], 8)}{wait:>7}'
              f'{num(p["impactd_us"], 9)}{num(p["redis_us"], 8)}{num(p["receiver_us"], 8)}')
    print('\nneed-post sent -> both webhooks received, ms (missing: never arrived, counted last)')
    print(f'{"phase":<10}{"rnd":>4}{"asked/s":>8}{"both in":>14}{"p50":>10}{"p99":>10}{"max":>10}'
          f'{"answer p50":>12}{"p99":>8}{"max lag":>9}')
    for p in phases:
        lat = p['lat']
        print(f'{p["name"]:<10}{p["round"]:>4.0f}{asked(p):>8}{p["complete"]:>7}/{p["allocs"]:<6}'
              f'{ms(percentile(lat, 0.5)):>10}{ms(percentile(lat, 0.99)):>10}'
              f'{ms(lat[-1] if lat else math.nan):>10}'
              f'{p["answer_p50"] / 1000:>12.1f}{p["answer_p99"] / 1000:>8.1f}'
              f'{p["max_lag_us"] / 1000:>9.1f}')


def med(vals):
    vals = [v for v in vals if not math.isnan(v)]
    return median(vals) if vals else math.nan


def summary(phases, bound):
    """Medians over the rounds of each phase name; returns the burst's deliveries/s."""
    names = list(dict.fromkeys(p['name'] for p in phases))
    burst_rate = math.nan
    for name in names:
        ps = [p for p in phases if p['name'] == name]
        missing = sum(p['missing'] for p in ps)
        short = sum(1 for p in ps if p['stopped_short'])
        note = (f', {missing} webhooks missing over {len(ps)} rounds' if missing else '') + \
               (f', {short} waits stopped short' if short else '')
        if ps[0]['target'] == 0:
            burst_rate = med([p['all_rate'] for p in ps])
            print(f'  {name:<9} deliveries/s (first to last webhook) {burst_rate:>7,.0f} '
                  f'({burst_rate / bound:.3f} of the signing bound; after the posting stopped '
                  f'{med([p["after_rate"] for p in ps]):,.0f}/s), need-posts answered at '
                  f'{med([p["rate"] for p in ps]):,.0f}/s{note}')
            if 'script_calls' in ps[0]:
                print(f'  {"":<9} Redis scripts per webhook delivered (need-post included): '
                      f'{med([p["script_calls"] / p["arrived"] for p in ps if p["arrived"]]):.1f} '
                      f'calls, {med([p["script_us_total"] / p["arrived"] for p in ps if p["arrived"]]):,.0f} us')
            continue
        target = ps[0]['target']
        # sustained: the need-posts kept the rate, and their webhooks kept up while posting
        kept = sum(1 for p in ps if p['rate'] >= 0.95 * target and p['missing'] == 0
                   and p['non201'] == 0 and p['during_rate'] >= 0.95 * 2 * target)
        p50 = med([percentile(p['lat'], 0.5) for p in ps])
        p99 = med([percentile(p['lat'], 0.99) for p in ps])
        print(f'  {name:<9} need-posts at {med([p["rate"] for p in ps]):>5,.0f}/s (asked {target:,.0f}), '
              f'webhooks at {med([p["during_rate"] for p in ps]):>5,.0f}/s while posting (needed '
              f'{2 * target:,.0f}/s); need-post -> both webhooks p50 {ms(p50)} ms, p99 {ms(p99)} ms; '
              f'sustained in {kept} of {len(ps)} rounds{note}')
    return burst_rate


def main():
    results, arrivals, hport, mport, clk = sys.argv[1:6]
    tick_us = 1e6 / float(clk)
    rows = list(records(results))
    by_alloc = read_arrivals(arrivals)
    sign = next(r for r in rows if r['kind'] == 'sign')
    bound = sign['ed25519_per_s'] / ED25519_PER_DELIVERY
    phases = [analyse(r, by_alloc, (hport, mport), tick_us) for r in rows if r['kind'] == 'phase']
    modes = sorted(dict.fromkeys(p['mode'] for p in phases), key=lambda m: (m != 'pinned', m))

    print(f'signing reference, libsodium on one core, {sign["bytes"]:.0f} bytes signed: '
          f'Ed25519 {sign["ed25519_per_s"]:,.0f}/s, HMAC-SHA256 {sign["hmac_per_s"]:,.0f}/s')
    print(f'  the signing bound: {ED25519_PER_DELIVERY} Ed25519 signatures (and one HMAC) per '
          f'delivered message -> {bound:,.0f} deliveries/s per core\n')
    rates = {}
    for mode in modes:
        print(f'== {MODE_TITLES.get(mode, mode)} ==')
        print_phases([p for p in phases if p['mode'] == mode])
        print(f'\nmedians over the rounds, {mode}:')
        rates[mode] = summary([p for p in phases if p['mode'] == mode], bound)
        print()
    print('  deliveries/s: all = webhooks / (last - first arrival); posting = those that arrived '
          'while the need-posts were being sent, over that time; after = the rest, over the '
          'time after. * = the wait stopped short (no arrival for a while, or its limit); '
          'metric = the growth of impactd_webhooks_delivered_total over the phase. CPU: during '
          'the phase, per need-post (its webhooks included). answer: the need-post\'s own HTTP '
          'answer (from its due time); max lag: the longest a need-post waited past its due '
          'time for a free connection (open loop: it counts).')
    print('\ntarget (issue 9):')
    first = modes[0]
    others = ''.join(f' ({m}: {rates[m]:,.0f}/s)' for m in modes[1:])
    ok = rates[first] >= DELIVERY_TARGET
    print(f'  signed webhook deliveries >= {DELIVERY_TARGET:,}/s, {first}: {rates[first]:,.0f}/s '
          f'-> {"met" if ok else "NOT met"}{others}')


if __name__ == '__main__':
    main()
