"""The serving trust boundary under 2,400 seeded corruptions, in a subprocess (a crash fails the
test with the case that caused it instead of killing pytest). See ``snapshot_fuzzer.py``."""

import json
import os
import subprocess
import sys

CASES = 2400


def test_every_corruption_is_served_exactly_or_refused():
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    p = subprocess.run([sys.executable, "-m", "tests.fuzz.snapshot_fuzzer", "--cases", str(CASES), "--seed", "13"],
                       capture_output=True, text=True, env=env, timeout=600)
    last = (p.stderr.strip().splitlines() or ["<no output>"])[-1]
    assert p.returncode == 0, f"the fuzzer died (exit {p.returncode}) at: {last}"
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["failures"] == [], json.dumps(s["failures"][:5], indent=1)
    assert s["cases"] == CASES
    # every kind ran, and the corruptions that must be caught were caught
    assert len(s["by_kind"]) == 10 and all(k["served"] + k["refused"] >= CASES // 10 for k in s["by_kind"].values())
    assert s["by_kind"]["manifest_unsigned_edit"]["served"] == 0  # the digest catches every hand edit
    assert s["by_kind"]["part_bytes"]["served"] == 0  # the checksums catch every changed data file
    assert s["refused"] > CASES // 2
