"""Run every benchmark, one after the other, each in its own process, and print their ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

for script in ("p1_stream_overhead.py", "p2_multiturn.py", "p3_import.py", "p4_store.py"):
    subprocess.run([sys.executable, str(HERE / script)], cwd=HERE, check=True)
