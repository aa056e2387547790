"""How much memory a model may still take here: what the memory checks for weights and KV caches compare with."""

from __future__ import annotations

import sys

MB = 1024 * 1024


def available_memory_mb() -> int:
    """What a model may use: unified memory's recommended working set on macOS, free RAM elsewhere."""
    if sys.platform == "darwin":
        try:
            import mlx.core as mx

            return int(mx.device_info()["max_recommended_working_set_size"] // MB)
        except Exception:
            pass
    import psutil

    return int(psutil.virtual_memory().available // MB)
