"""Start-up benchmark: ``pyipxe run`` of a three-line script, against bare Python.

Reports the median wall time of N runs and the ratio to ``python -c pass`` measured in
the same run (the floor any Python program pays). Target: under 150 ms on the
project's 2-core machine. Reported, never asserted.

    python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Benchmark the checkout this file belongs to, installed or not.
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
SCRIPT = "#!ipxe\nset greeting hello\necho ${greeting} from ${platform}\n"


def median_time(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=ENV)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "three.ipxe"
        script.write_text(SCRIPT)
        baseline = median_time([sys.executable, "-c", "pass"], args.runs)
        pyipxe = median_time([sys.executable, "-m", "pyipxe", "run", str(script)], args.runs)
    print(f"python -c pass      {baseline * 1000:7.1f} ms")
    print(f"pyipxe run 3 lines  {pyipxe * 1000:7.1f} ms   ({pyipxe / baseline:.1f}x bare Python;"
          f" target 150 ms: {'met' if pyipxe < 0.150 else 'missed'})")


if __name__ == "__main__":
    main()
