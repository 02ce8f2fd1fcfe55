#!/usr/bin/python3
"""populate.py — filler open offers or needs for the need-post benchmark (bench/run).

Writes, as Redis protocol on stdout (for `redis-cli --pipe`), the records of COUNT open
offers or needs of one market exactly as offer_create.lua / need_create.lua would have stored
them (src/scripts/market_lib.lua): the record in the `offers`/`needs` hash, its index entry
(`oi:<region>:<scope>` scored by ready_at; `ni:<region>` scored by urgency rank * 1e13 +
needed_by), `own` and `all` (lex), and the `agg` counters. Ids follow src/ids.c (prefix, 26
base32 chars of time and randomness, the market code). It does not write the `events`
stream: that stream is capped (MAXLEN ~ 1,000,000), so it is not a cost per open item.

Filler never matches anything, so the state stays one the daemon could have reached:
  every filler need has needed_by in [now + 1 d, now + 20 d];
  every filler offer has ready_at  in [now + 22 d, now + 60 d];
and an offer serves a need only when ready_at <= needed_by. bench/run posts its one big offer
with ready_at = now + 21 d (after every filler needed_by, before every filler ready_at), so
its need-posts, which have no needed_by, find that offer first in their own region.

Region, urgency and scope go round their lists by the item's ordinal (START + i; periods
chosen so every region gets every urgency and scope), so successive calls continue one
pattern. Owns nothing but its output; stdlib only.
"""
import argparse
import json
import random
import sys

DAY_MS = 86_400_000
NEED_BY_DAYS = (1, 20)
OFFER_READY_DAYS = (22, 60)
BAND = 10_000_000_000_000           # market_lib.lua: one urgency band of need scores
URGENCIES = ('stat', 'asap', 'urgent', 'routine')
SCOPES = ('region', 'neighbours', 'national')
B32 = '0123456789abcdefghjkmnpqrstvwxyz'
BATCH = 1000                        # records per HSET / ZADD command


def resp(*args):
    """One command in Redis protocol."""
    out = [b'*%d\r\n' % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b'$%d\r\n%s\r\n' % (len(b), b))
    return b''.join(out)


def new_id(prefix, now_ms, rng, code):
    """src/ids.c: 6 bytes of ms time, 10 random bytes, as 26 base32 digits; + market code."""
    v = (now_ms & (2**48 - 1)) << 80 | rng.getrandbits(80)
    return prefix + ''.join(B32[(v >> (125 - 5 * k)) & 31] for k in range(26)) + code


def days(rng, span):
    """A uniform delay in ms within span (days)."""
    return rng.randint(span[0] * DAY_MS, span[1] * DAY_MS)


def need_record(i, a, rng, region):
    urgency = URGENCIES[(i // 18) % len(URGENCIES)]
    q = rng.randint(1, 1000)
    return {
        'id': new_id('ned_', a.now, rng, a.code), 'participant_id': a.participant,
        'product': a.market, 'market': a.market, 'quantity': q, 'urgency': urgency,
        'region': region, 'needed_by': a.now + days(rng, NEED_BY_DAYS),
        'remaining': q, 'allocated': 0, 'received': 0, 'status': 'open',
        'created_at': a.now, 'updated_at': a.now,
    }


def offer_record(i, a, rng, region):
    q = rng.randint(1, 100_000)
    return {
        'id': new_id('off_', a.now, rng, a.code), 'participant_id': a.participant,
        'product': a.market, 'market': a.market, 'quantity': q, 'region': region,
        'scope': SCOPES[(i // 7) % len(SCOPES)],
        'ready_at': a.now + days(rng, OFFER_READY_DAYS),
        'remaining': q, 'allocated': 0, 'released': 0, 'status': 'open',
        'created_at': a.now, 'updated_at': a.now,
    }


def index_entry(a, rec):
    """(index key, score) as market_lib.lua's offer_save / need_save compute them."""
    if a.kind == 'need':
        return (f'{a.mkey}ni:{rec["region"]}',
                URGENCIES.index(rec['urgency']) * BAND + rec['needed_by'])
    return f'{a.mkey}oi:{rec["region"]}:{rec["scope"]}', rec['ready_at']


def add_agg(agg, a, rec):
    def inc(col, v):
        k = f'{rec["region"]}|{a.market}|{col}'
        agg[k] = agg.get(k, 0) + v
    if a.kind == 'offer':
        inc('offered_open', rec['remaining'])
        return
    inc('needed_open', rec['remaining'])
    if rec['urgency'] in ('stat', 'asap'):
        inc('needed_open_' + rec['urgency'], rec['remaining'])


def emit_batch(out, a, recs):
    hash_key = a.mkey + ('needs' if a.kind == 'need' else 'offers')
    hset = [hash_key]
    own, every, index = [a.mkey + 'own'], [a.mkey + 'all'], {}
    for rec in recs:
        hset += [rec['id'], json.dumps(rec, separators=(',', ':'))]
        own += ['0', f'{rec["participant_id"]}:{rec["id"]}']
        every += ['0', rec['id']]
        key, score = index_entry(a, rec)
        index.setdefault(key, []).extend([str(score), rec['id']])
    out.write(resp('HSET', *hset))
    for key, members in index.items():
        out.write(resp('ZADD', key, *members))
    out.write(resp('ZADD', *own))
    out.write(resp('ZADD', *every))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--kind', choices=('need', 'offer'), required=True)
    p.add_argument('--count', type=int, required=True)
    p.add_argument('--start', type=int, default=0, help='ordinal of the first item')
    p.add_argument('--market', required=True, help='market (and product) id, e.g. ethanol-96')
    p.add_argument('--code', required=True, help="the market's 4-char id suffix")
    p.add_argument('--participant', required=True, help='owner of every filler item')
    p.add_argument('--regions', required=True, help='path of the catalogue regions.json')
    p.add_argument('--now', type=int, required=True, help='Unix ms')
    p.add_argument('--prefix', default='impact:', help='IMPACTD_KEY_PREFIX')
    a = p.parse_args()
    a.mkey = f'{a.prefix}m:{{{a.market}}}:'
    with open(a.regions, encoding='utf-8') as f:
        regions = [r['code'] for r in json.load(f)['regions']]
    rng = random.Random(f'{a.kind}:{a.start}')
    make = need_record if a.kind == 'need' else offer_record
    out = sys.stdout.buffer
    agg, recs = {}, []
    for i in range(a.start, a.start + a.count):
        rec = make(i, a, rng, regions[i % len(regions)])
        add_agg(agg, a, rec)
        recs.append(rec)
        if len(recs) == BATCH:
            emit_batch(out, a, recs)
            recs = []
    if recs:
        emit_batch(out, a, recs)
    for field, v in sorted(agg.items()):
        out.write(resp('HINCRBY', a.mkey + 'agg', field, v))
    out.flush()


if __name__ == '__main__':
    main()
