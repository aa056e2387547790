"""Shared set-up for the benchmarks: a throwaway data dir and the real default model from the cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL_CACHE = Path(os.environ.get("ANCIA_TEST_CACHE", REPO / ".pytest_cache" / "ancia-models"))


def fresh_data_dir() -> str:
    path = tempfile.mkdtemp(prefix="ancia-bench-")
    os.environ["ANCIA_DATA_DIR"] = path
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    os.environ["ANCIA_MODELS_DIR"] = str(MODEL_CACHE)
    return path


def report(name: str, ratio: float, target: str, detail: str) -> None:
    print(f"{name}: ratio {ratio:.3f} (target {target}) — {detail}", flush=True)
