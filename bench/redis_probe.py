#!/usr/bin/python3
"""redis_probe.py — what the benchmarks read back from Redis, from generic Redis facts only.

    redis_probe.py PORT PREFIX COMMAND [ARG]

impactd's storage format (key layout, record encoding, script names) is not known here and
must not be: the benchmarks measure one daemon before and after a redesign of it. What this
relies on is Redis itself and two facts of the notifier's contract: its consumer group is
named `notify`, on the streams whose key names match PREFIX + `*m:{*}:events`.

COMMAND:
  backlog            prints the notifier's backlog: over those streams, the group's pending
                     entries plus its lag (entries not yet read); -1 when Redis cannot say.
  drain LIMIT_S [SINCE]
                     waits until the backlog is 0, polling every 20 ms; prints `backlog=<the
                     first reading> drain_s=<seconds from SINCE (Unix seconds, e.g. when the
                     load stopped; default: now) until it was 0; 0 when the first reading
                     was>`; exits 1 after LIMIT_S.
  skip               moves the group of every stream to its end (XGROUP SETID ... $): what
                     synthetic calls wrote is owed to nobody.
  memory             prints `used= streams_bytes= streams_entries= streams_added=`: INFO
                     used_memory, and over the streams the sum of MEMORY USAGE (SAMPLES 0),
                     of XLEN and of entries-added (XINFO STREAM: trimmed ones included).
  resetstat          CONFIG RESETSTAT (command stats and latency percentiles from zero).
  scripts            prints `script_cmd= script_calls= script_us_total= script_us=
                     script_p50_us= script_p99_us=` from INFO commandstats and latencystats:
                     EVALSHA or FCALL, whichever was called (EVAL and FCALL_RO too; summed
                     when several were, the percentiles then the busiest one's). `none` when
                     no script was called.
  info FIELD...      prints `FIELD=value` for each INFO field named.
Owns nothing; stdlib only (one RESP2 connection per invocation).
"""
import socket
import sys
import time

GROUP = 'notify'
POLL_S = 0.02


class Redis:
    """A minimal RESP2 client: enough for INFO, SCAN, XINFO, MEMORY, XGROUP."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=30)
        self.buf = b''

    def call(self, *args):
        out = [b'*%d\r\n' % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(b), b))
        self.sock.sendall(b''.join(out))
        return self.read()

    def line(self):
        while b'\r\n' not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError('redis closed the connection')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError('redis closed the connection')
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b'+':
            return rest.decode()
        if kind == b'-':
            raise RuntimeError(rest.decode())
        if kind == b':':
            return int(rest)
        if kind == b'$':
            n = int(rest)
            return None if n < 0 else self.exact(n).decode(errors='replace')
        if kind == b'*':
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError('unexpected reply %r' % line)


def info(r, section='everything'):
    out = {}
    for line in r.call('INFO', section).splitlines():
        if ':' in line and not line.startswith('#'):
            k, v = line.split(':', 1)
            out[k] = v
    return out


def streams(r, prefix):
    keys, cursor = [], '0'
    while True:
        cursor, batch = r.call('SCAN', cursor, 'MATCH', prefix + '*m:{*}:events', 'COUNT', 1000,
                               'TYPE', 'stream')
        keys += batch
        if cursor == '0':
            return sorted(set(keys))


def pairs(flat):
    return dict(zip(flat[0::2], flat[1::2]))


def stream_backlog(r, key):
    """pending + lag of the group on key; None when Redis cannot tell the lag."""
    groups = [pairs(g) for g in r.call('XINFO', 'GROUPS', key)]
    g = next((g for g in groups if g['name'] == GROUP), None)
    if g is None:
        return 0        # no notifier has read this stream yet: created on its first read
    lag = g.get('lag')
    if lag is None:
        s = pairs(r.call('XINFO', 'STREAM', key))
        if g['last-delivered-id'] == s['last-generated-id']:
            lag = 0
        elif g.get('entries-read') is not None:
            lag = s['entries-added'] - g['entries-read']
        else:
            return None
    return g['pending'] + lag


def backlog(r, prefix):
    total = 0
    for key in streams(r, prefix):
        b = stream_backlog(r, key)
        if b is None:
            return -1
        total += b
    return total


def drain(r, prefix, limit_s, since):
    start = time.time()
    first = None
    while True:
        b = backlog(r, prefix)
        now = time.time()
        first = b if first is None else first
        if b == 0 or now - start >= limit_s:
            # empty at the first look: drained within this probe's start-up (~50 ms)
            waited = 0 if first == 0 else now - (since or start)
            print(f'backlog={first} drain_s={waited:.3f}')
            if b:
                print(f'redis_probe: the notifier did not drain within {limit_s} s '
                      f'(backlog {b})', file=sys.stderr)
            return 1 if b else 0
        time.sleep(POLL_S)


def skip(r, prefix):
    for key in streams(r, prefix):
        try:
            r.call('XGROUP', 'SETID', key, GROUP, '$')
        except RuntimeError as e:
            if 'NOGROUP' not in str(e):
                raise


def memory(r, prefix):
    used = int(info(r, 'memory')['used_memory'])
    nbytes = entries = added = 0
    for key in streams(r, prefix):
        nbytes += r.call('MEMORY', 'USAGE', key, 'SAMPLES', 0) or 0
        entries += r.call('XLEN', key)
        added += pairs(r.call('XINFO', 'STREAM', key))['entries-added']
    print(f'used={used} streams_bytes={nbytes} streams_entries={entries} streams_added={added}')


def scripts(r):
    inf = info(r)
    seen = []
    for cmd in ('evalsha', 'fcall', 'eval', 'fcall_ro'):
        stat = inf.get('cmdstat_' + cmd)
        if not stat:
            continue
        f = dict(kv.split('=', 1) for kv in stat.split(','))
        pct = dict(kv.split('=', 1) for kv in inf.get('latency_percentiles_usec_' + cmd,
                                                       'p50=0,p99=0').split(','))
        seen.append((int(f['calls']), float(f['usec']), cmd, float(pct.get('p50', 0)),
                     float(pct.get('p99', 0))))
    if not seen:
        print('script_cmd=none script_calls=0 script_us_total=0 script_us=0 '
              'script_p50_us=0 script_p99_us=0')
        return
    calls = sum(s[0] for s in seen)
    usec = sum(s[1] for s in seen)
    busiest = max(seen)
    print(f'script_cmd={"+".join(s[2] for s in seen)} script_calls={calls} '
          f'script_us_total={usec:.0f} script_us={usec / calls if calls else 0:.1f} '
          f'script_p50_us={busiest[3]:.1f} script_p99_us={busiest[4]:.1f}')


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    r = Redis(int(sys.argv[1]))
    prefix, cmd, args = sys.argv[2], sys.argv[3], sys.argv[4:]
    if cmd == 'backlog':
        print(backlog(r, prefix))
    elif cmd == 'drain':
        sys.exit(drain(r, prefix, float(args[0]), float(args[1]) if len(args) > 1 else None))
    elif cmd == 'skip':
        skip(r, prefix)
    elif cmd == 'memory':
        memory(r, prefix)
    elif cmd == 'resetstat':
        r.call('CONFIG', 'RESETSTAT')
    elif cmd == 'scripts':
        scripts(r)
    elif cmd == 'info':
        inf = info(r)
        print(' '.join(f'{k}={inf.get(k, "?")}' for k in args))
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main()
