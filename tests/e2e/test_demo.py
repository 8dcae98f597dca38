"""`make demo`'s own path, end to end, as CI's proof that the demo works: the demo
script on a lab of its own, taken down at the end (``--down``)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.e2e.conftest import require_lab_host
from tests.e2e.lab import REPO, unique_lab_name


def test_the_demo_deploys_fails_over_twice_and_loses_nothing(tmp_path):
    require_lab_host()
    name = unique_lab_name("demo")
    png = tmp_path / "demo.png"
    r = subprocess.run([sys.executable, "-m", "tests.e2e.demo", "--name", name, "--down",
                        "--png", str(png)], cwd=REPO, capture_output=True, text=True,
                       timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    for n in range(1, 6):  # one progress line per phase, with the elapsed time
        assert re.search(rf"\[demo {name} \+ *[0-9.]+s\] phase {n}/5: ", out), out[-6000:]
    assert "FIRST FAILOVER: first action" in out
    assert re.search(r"Actions: \d+ ticks executed, 0 lost, 0 duplicated", out), out[-3000:]
    assert png.stat().st_size > 10_000
    assert "taking the lab down" in out
    listed = subprocess.run([str(REPO / ".venv" / "bin" / "congress-ha-lab"), "list"],
                            capture_output=True, text=True, timeout=30).stdout.split()
    assert name not in listed
