"""Run every benchmark, one after the other, each in its own process, and print their ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

RUNS = [["p1_stream_overhead.py"], ["p2_multiturn.py"], ["p2_multiturn.py", "mlx"], ["p2_long.py"],
        ["p3_import.py"], ["p4_store.py"], ["p5_p7_runtime.py"], ["p8_busy_ttft.py"], ["p9_memory.py"],
        ["p10_restart.py"], ["p11_completion.py"], ["p12_prompt_lookup.py"]]

for script, *args in RUNS:
    subprocess.run([sys.executable, str(HERE / script), *args], cwd=HERE, check=True)
