#!/usr/bin/env python3
"""Counts individual test cases of one `meson test` run: cmocka cases from each unit test's
output, pytest cases from the integration suite's JUnit file. Prints `N passed, N failed`;
exits 1 when anything failed or could not be read."""
import json
import os
import re
import sys
import xml.etree.ElementTree as ET


def main(builddir):
    passed = failed = 0
    log = os.path.join(builddir, 'meson-logs', 'testlog.json')
    with open(log) as f:
        results = [json.loads(line) for line in f if line.strip()]
    for r in results:
        ok = r.get('result') == 'OK'
        if r['name'].split(' / ')[-1] == 'integration':
            junit = os.path.join(builddir, 'tests', 'integration-junit.xml')
            try:
                root = ET.parse(junit).getroot()
            except (OSError, ET.ParseError):
                failed += 1
                continue
            suites = [root] if root.tag == 'testsuite' else root.findall('testsuite')
            for s in suites:
                n = int(s.get('tests', 0))
                bad = int(s.get('failures', 0)) + int(s.get('errors', 0))
                skipped = int(s.get('skipped', 0))
                passed += n - bad - skipped
                failed += bad
            if not ok and not any(int(s.get('failures', 0)) + int(s.get('errors', 0)) for s in suites):
                failed += 1     # pytest itself failed (e.g. a collection error)
            continue
        out = r.get('stdout', '') or ''
        p = sum(int(m) for m in re.findall(r'\[  PASSED  \] (\d+) test', out))
        fl = sum(int(m) for m in re.findall(r'\[  FAILED  \] (\d+) test', out))
        if p == 0 and fl == 0:
            p, fl = (1, 0) if ok else (0, 1)
        elif not ok and fl == 0:
            fl = 1              # crashed after reporting passes
        passed += p
        failed += fl
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
