#!/usr/bin/python3
"""evalsha_args.py — the daemon's own need_create call, made repeatable for redis-benchmark.

Reads `redis-cli MONITOR` output (stdin) recorded while impactd served one POST /v1/needs,
finds that EVALSHA (the one whose operation, the last argument, holds a "need"), and writes
its arguments NUL-separated on stdout — the same SHA, KEYS and ARGV, byte for byte — except
that the last 12 characters of the need id's 26 and of the allocation id base (ARGV[4]) become
`__rand_int__`, which redis-benchmark -r replaces with 12 random digits (digits are valid
base32), so every call creates a new need and a new allocation instead of a conflict.
A summary goes to stderr. Owns nothing; stdlib only.
"""
import json
import re
import sys

QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')
ESCAPES = {b'n': b'\n', b'r': b'\r', b't': b'\t', b'a': b'\a', b'b': b'\b', b'"': b'"',
           b'\\': b'\\'}
RAND = b'__rand_int__'


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


def find_call(lines):
    """The first EVALSHA whose operation (ARGV[6], market_lib.lua) holds a need: its
    arguments, its number of keys and the operation."""
    for line in lines:
        args = [unrepr(m.group(1)) for m in QUOTED.finditer(line)]
        if len(args) < 3 or args[0].upper() != b'EVALSHA' or not args[2].isdigit():
            continue
        numkeys = int(args[2])
        argv = args[3 + numkeys:]
        if len(argv) < 6:
            continue
        try:
            op = json.loads(argv[5])
        except ValueError:
            continue
        if isinstance(op, dict) and 'need' in op:
            return args, numkeys, op
    sys.exit('evalsha_args.py: no need_create EVALSHA in the MONITOR output')


def main():
    args, numkeys, op = find_call(sys.stdin.buffer.read().splitlines())
    argv = args[3 + numkeys:]
    if not re.fullmatch(rb'[0-9a-z]{12,}', argv[3]):
        sys.exit('evalsha_args.py: unexpected ARGV layout (market_lib.lua changed?)')
    need_id = op['need']['id'].encode()
    if not re.fullmatch(rb'ned_[0-9a-z]{30}', need_id):
        sys.exit('evalsha_args.py: unexpected need id %r' % need_id)
    rand_id = need_id[:18] + RAND + need_id[30:]
    if argv[5].count(need_id) != 1:
        sys.exit('evalsha_args.py: the need id is not once in the operation')
    argv[5] = argv[5].replace(need_id, rand_id)
    argv[3] = argv[3][:-12] + RAND
    out = args[:3 + numkeys] + argv
    sys.stdout.buffer.write(b'\0'.join(out) + b'\0')
    print(f'need_create call: sha {args[1].decode()}, {numkeys} keys, '
          f'{sum(len(a) for a in out)} bytes of arguments', file=sys.stderr)


if __name__ == '__main__':
    main()
