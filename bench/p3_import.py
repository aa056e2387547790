"""P3: wall time of ``import ancia_jupyter`` and of ``%load_ext ancia_jupyter`` in a fresh process.

Each is measured inside a new interpreter (best of several), against the 100 ms target; the ratio printed is
target ÷ measured, so ≥ 1 meets it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

from common import report

TARGET = 0.100
RUNS = 7

IMPORT = "import time; t = time.perf_counter(); import ancia_jupyter; print(time.perf_counter() - t)"
LOAD_EXT = (
    "from IPython.testing.globalipapp import start_ipython; ip = start_ipython()\n"
    "import time; t = time.perf_counter(); ip.run_line_magic('load_ext', 'ancia_jupyter'); "
    "print(time.perf_counter() - t)"
)


def best(code: str) -> float:
    env_dir = tempfile.mkdtemp()
    times = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"ANCIA_DATA_DIR": env_dir, "PATH": ""}).stdout
        times.append(float(out.strip().splitlines()[-1]))
    return min(times)


def main() -> None:
    imported = best(IMPORT)
    loaded = best(LOAD_EXT)
    report("P3 import ancia_jupyter", TARGET / imported, "≥ 1 (≤ 100 ms)", f"{imported * 1000:.1f} ms")
    report("P3 %load_ext ancia_jupyter", TARGET / loaded, "≥ 1 (≤ 100 ms)", f"{loaded * 1000:.1f} ms")


if __name__ == "__main__":
    main()
