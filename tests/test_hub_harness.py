"""The hub test's harness: two hub tests on one machine (two clones, two CI jobs) take turns, since the test users'
names are fixed and each run deletes them at its end."""

from __future__ import annotations

import subprocess
import sys

import hub_harness

PROBE = """import fcntl, sys
f = open(sys.argv[1], "a+")
try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("got")
except BlockingIOError:
    print("blocked")
"""


def probe() -> str:
    r = subprocess.run([sys.executable, "-c", PROBE, str(hub_harness.LOCK_FILE)], capture_output=True, text=True)
    return r.stdout.strip()


def test_a_second_hub_test_waits_for_the_first():
    held = hub_harness.machine_lock()
    try:
        assert probe() == "blocked"
    finally:
        held.close()
    assert probe() == "got"
