#!/usr/bin/python3
"""capture.py — the daemon's own need-post call, made repeatable for redis-benchmark.

    capture.py MARKER ANSWER_FILE OUT < MONITOR_OUTPUT

Reads `redis-cli MONITOR` output recorded while impactd served one POST /v1/needs whose
`note` was MARKER, finds the call that carried it — the first EVALSHA or FCALL (EVAL and
FCALL_RO count too) sent by a client, not run inside a script, with MARKER in one of its
arguments — and writes its arguments, byte for byte, to OUT.args ("<length>\n<bytes>\n"
each, for bench/replay) and, when none holds a NUL byte (a command line cannot carry one:
msgpack-encoded arguments do), NUL-separated to OUT.argv (for `redis-benchmark ...
<args>`); OUT.name gets the command and its first argument (the SHA or function name).
Nothing here knows impactd's key layout, record encoding or script names: the call is found
by what it carries, and replayed as it was.

A call that generates its ids inside Redis creates a new need each time it is replayed. A
call that carries the need's id in its arguments (a `ned_` id: impactd generates the ids
before the call today) would conflict with the need it created: then, for the need id and
each allocation id of ANSWER_FILE (the need-post's answer), the longest prefix of the id's
26-character body found in the arguments (at least 16 characters: the need id itself, the
allocation id base) has its last 12 characters before the 4-character market code, and the
12 before those when it has them, replaced by `__rand_int__`, which redis-benchmark -r and
bench/replay turn into 12 random digits each (valid base32), so every call creates a new
need and new allocations (two segments: redis-benchmark draws each from at most 2^31
values, and one would repeat a need id within some 10^4 calls). A summary goes to stderr.
Owns nothing; stdlib only.
"""
import json
import re
import sys

LINE = re.compile(rb'^[\d.]+ \[\d+ ([^\]]+)\] (.*)$')
QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')
ESCAPES = {b'n': b'\n', b'r': b'\r', b't': b'\t', b'a': b'\a', b'b': b'\b', b'"': b'"',
           b'\\': b'\\'}
RAND = b'__rand_int__'
CALLS = (b'EVALSHA', b'FCALL', b'EVAL', b'FCALL_RO')
ID_BODY = 26                # base32 digits of an id before its 4-character market code
MIN_PREFIX = 16
SEGMENTS = 2                # __rand_int__ segments per id, at most


def unrepr(s):
    """Undo Redis' sdscatrepr quoting of one MONITOR argument."""
    out, i = bytearray(), 0
    while i < len(s):
        c = s[i:i + 1]
        if c == b'\\':
            n = s[i + 1:i + 2]
            if n == b'x':
                out += bytes([int(s[i + 2:i + 4], 16)])
                i += 4
                continue
            out += ESCAPES.get(n, n)
            i += 2
            continue
        out += c
        i += 1
    return bytes(out)


def find_call(lines, marker):
    """The arguments of the first client EVALSHA/FCALL that carries marker, and how many."""
    found = []
    for line in lines:
        m = LINE.match(line)
        if not m or m.group(1) == b'lua':
            continue
        args = [unrepr(q.group(1)) for q in QUOTED.finditer(m.group(2))]
        if args and args[0].upper() in CALLS and any(marker in a for a in args[1:]):
            found.append(args)
    if not found:
        sys.exit('capture.py: no EVALSHA or FCALL carried the marker in the MONITOR output')
    return found[0], len(found)


def randomise(args, answer):
    """Replaces the random part of each id of the answer found in args; the ids touched."""
    ids = [answer['need']['id']] + [a['id'] for a in answer.get('allocations', [])]
    touched = []
    for full in ids:
        prefix, body = full[:4].encode(), full[4:].encode()
        for n in range(len(body), MIN_PREFIX - 1, -1):
            sub = body[:n]
            if any(sub in a for a in args[1:]):
                break
        else:
            continue
        # 12 characters ending before the market code, and the 12 before those when the id
        # has them: redis-benchmark -r draws from at most 2^31 values, so one segment would
        # repeat a need id (a conflict) within some 10^4 calls
        new = sub
        for end in range(min(n, ID_BODY), len(RAND) - 1, -len(RAND))[:SEGMENTS]:
            new = new[:end - len(RAND)] + RAND + new[end:]
        args[1:] = [a.replace(sub, new) for a in args[1:]]
        touched.append((prefix + sub).decode())
    return touched


def main():
    marker = sys.argv[1].encode()
    with open(sys.argv[2], encoding='utf-8') as f:
        answer = json.load(f)
    out = sys.argv[3]
    args, count = find_call(sys.stdin.buffer.read().splitlines(), marker)
    touched = randomise(args, answer) if any(b'ned_' in a for a in args[1:]) else []
    with open(out + '.args', 'wb') as f:
        f.write(b''.join(b'%d\n%s\n' % (len(a), a) for a in args))
    with open(out + '.name', 'wb') as f:
        f.write(b' '.join(args[:2]) + b'\n')
    with_nul = any(b'\0' in a for a in args)
    if not with_nul:
        with open(out + '.argv', 'wb') as f:
            f.write(b'\0'.join(args) + b'\0')
    print(f'capture.py: need-post call {args[0].decode()} {args[1].decode()}, '
          f'{len(args) - 1} arguments, {sum(len(a) for a in args)} bytes'
          + (f'; ids randomised: {", ".join(touched)}' if touched else
             '; replayed as captured (no need id among its arguments)')
          + ('; an argument holds a NUL byte: no redis-benchmark, bench/replay only'
             if with_nul else '')
          + (f'; {count} calls carried the marker, the first is used' if count > 1 else ''),
          file=sys.stderr)


if __name__ == '__main__':
    main()
