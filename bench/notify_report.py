#!/usr/bin/python3
"""notify_report.py — the results table of the notification benchmark (bench/notify).

    notify_report.py RESULTS ARRIVALS HOSPITAL_PORT MAKER_PORT CLK_TCK

RESULTS has one measurement a line, `kind key=value ...`:
  sign bytes= ed25519_per_s= hmac_per_s=                        (bench/sign_rate)
  phase name= target= count= requests= answered= non201= duration_us= rate= max_lag_us=
        pace=<file> waited_s= stopped_short= metric_delivered= due_left= impactd_ticks=
        redis_ticks= receiver_ticks=                             (one phase of bench/notify)
(target: the need-posts per second asked for, 0 for as many as go; rate: bench/pace's
answers per second). A phase's pace file has one line per need-post (bench/pace:
due, sent, answered µs, status, allocation id); ARRIVALS one line per webhook received
(bench/receiver: arrival µs, port, webhook-id, type, data.id, bytes), both CLOCK_MONOTONIC.
A phase's webhooks are those whose data.id is one of its allocations; a webhook-id
received twice (a retry of a delivery whose answer was lost) counts once.

Prints the signing reference, one row per phase (need-posts, webhooks, delivery rates, the
CPU time impactd, Redis and the receiver spent over the phase per need-post)
and, per phase, the time from each need-post's send to the later of its two webhooks (one
per side; the first arrival on each side), with the ones that never arrived counted as
infinitely late, so that a percentile they reach reads "missing". Owns nothing; stdlib only.
"""
import math
import sys

from report import records

ED25519_PER_DELIVERY = 2    # one when the message is made (inbox), one at the attempt (v1a)


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


def main():
    results, arrivals, hport, mport, clk = sys.argv[1:6]
    tick_us = 1e6 / float(clk)
    rows = list(records(results))
    by_alloc = read_arrivals(arrivals)
    sign = next(r for r in rows if r['kind'] == 'sign')
    bound = sign['ed25519_per_s'] / ED25519_PER_DELIVERY
    phases = [analyse(r, by_alloc, (hport, mport), tick_us) for r in rows if r['kind'] == 'phase']

    print(f'signing reference, libsodium on one core, {sign["bytes"]:.0f} bytes signed: '
          f'Ed25519 {sign["ed25519_per_s"]:,.0f}/s, HMAC-SHA256 {sign["hmac_per_s"]:,.0f}/s')
    print(f'  the signing bound: {ED25519_PER_DELIVERY} Ed25519 signatures (and one HMAC) per '
          f'delivered message -> {bound:,.0f} deliveries/s per core\n')

    print(f'{"":<10}{"need-posts":>27}{"webhooks":>26}{"deliveries/s":>28}{"CPU us/need-post":>25}')
    print(f'{"phase":<10}{"asked/s":>8}{"count":>7}{"got/s":>7}{"non201":>7}'
          f'{"expected":>9}{"arrived":>9}{"metric":>8}'
          f'{"all":>8}{"posting":>9}{"after":>8}{"wait s":>7}'
          f'{"impactd":>9}{"redis":>8}{"recv":>8}')
    for p in phases:
        asked = 'max' if p['target'] == 0 else f'{p["target"]:.0f}'
        wait = f'{p["waited_s"]:.0f}' + ('*' if p['stopped_short'] else '')
        print(f'{p["name"]:<10}{asked:>8}{p["count"]:>7.0f}{p["rate"]:>7.0f}{p["non201"]:>7.0f}'
              f'{p["expected"]:>9}{p["arrived"]:>9}{p["metric_delivered"]:>8.0f}'
              f'{num(p["all_rate"], 8)}{num(p["during_rate"], 9)}{num(p["after_rate"], 8)}{wait:>7}'
              f'{num(p["impactd_us"], 9)}{num(p["redis_us"], 8)}{num(p["receiver_us"], 8)}')
    print('  deliveries/s: all = webhooks / (last - first arrival); posting = those that arrived '
          'while the need-posts were being sent, over that time; after = the rest, over the '
          'time after. * = the wait stopped short (no arrival for a while, or its limit); '
          'metric = impactd_webhooks_delivered_total of that phase\'s impactd. CPU: '
          'during the phase, per need-post (its webhooks included).')

    print('\nneed-post sent -> both webhooks received, ms (missing: never arrived, counted last)')
    print(f'{"phase":<10}{"asked/s":>8}{"both in":>14}{"p50":>10}{"p99":>10}{"max":>10}'
          f'{"answer p50":>12}{"p99":>8}{"max lag":>9}')
    for p in phases:
        asked = 'max' if p['target'] == 0 else f'{p["target"]:.0f}'
        lat = p['lat']
        print(f'{p["name"]:<10}{asked:>8}{p["complete"]:>7}/{p["allocs"]:<6}'
              f'{ms(percentile(lat, 0.5)):>10}{ms(percentile(lat, 0.99)):>10}{ms(lat[-1]):>10}'
              f'{p["answer_p50"] / 1000:>12.1f}{p["answer_p99"] / 1000:>8.1f}'
              f'{p["max_lag_us"] / 1000:>9.1f}')
    print('  answer: the need-post\'s own HTTP answer (from its due time); max lag: the longest '
          'a need-post waited past its due time for a free connection (open loop: it counts).')

    burst = next((p for p in phases if p['target'] == 0), None)
    if burst and burst['missing'] == 0:
        print(f'\ndeliveries/s (burst, first to last webhook): {burst["all_rate"]:,.0f}, '
              f'{burst["all_rate"] / bound:.3f} of the signing bound')
    elif burst:
        print(f'\ndeliveries/s (burst): NOT measured to the end: {burst["arrived"]} of '
              f'{burst["expected"]} webhooks arrived, then the wait stopped '
              f'({burst["waited_s"]:.0f} s); while they came, {burst["all_rate"]:,.0f}/s '
              f'({burst["all_rate"] / bound:.3f} of the signing bound)')
    for p in phases:
        if p['target'] == 0:
            continue
        kept = p['rate'] >= 0.95 * p['target'] and p['missing'] == 0 and p['non201'] == 0
        print(f'{p["target"]:,.0f} need-posts/s: need-posts answered at {p["rate"]:,.0f}/s, '
              f'webhooks delivered at {p["during_rate"]:,.0f}/s while posting '
              f'(needed {2 * p["target"]:,.0f}/s), {p["missing"]} of {p["expected"]} missing '
              f'-> {"sustained" if kept else "NOT sustained"}')


if __name__ == '__main__':
    main()
