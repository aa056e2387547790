"""Several kernels of one user write to the same database file at once: no write is ever refused.

Each kernel is a separate process, so these tests start real processes that open the file with their
own `Store` and start together on a signal file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from ancia_jupyter.store.database import Store
from ancia_jupyter.store.migrations import migrations

CHILD = """
import json, os, sys, time
from pathlib import Path
from ancia_jupyter.store.database import Store

path, go, task, arg = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
errors, count = [], 0
if task == "append":
    store = Store(path)
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.002)
try:
    if task == "open":
        store = Store(path)
        store.create_chat(f"opened by {os.getpid()}")
        count = 1
    else:
        for i in range(1000):
            try:
                store.add_message(arg, "user", f"message {i} from {os.getpid()}")
                count += 1
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")
except Exception as e:
    errors.append(f"{type(e).__name__}: {e}")
print(json.dumps({"count": count, "errors": errors[:5], "error_count": len(errors)}))
"""


def run_together(path: Path, task: str, args: list[int]) -> list[dict]:
    """Start one process per arg, release them at the same moment, and collect what each reports."""
    go = path.parent.parent / "signals" / "go"
    go.parent.mkdir()
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(go), task, str(arg)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for arg in args
    ]
    deadline = time.monotonic() + 60
    while len(list(go.parent.glob("ready-*"))) < len(args) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_four_processes_appending_to_their_own_chats_lose_nothing(tmp_path):
    path = tmp_path / "data" / "ancia.db"
    store = Store(path)
    chats = [store.create_chat(f"kernel {i}")["id"] for i in range(4)]
    results = run_together(path, "append", chats)
    assert [r["error_count"] for r in results] == [0, 0, 0, 0], results
    assert [len(store.history(chat)) for chat in chats] == [1000] * 4
    store.close()


def test_four_processes_appending_to_one_chat_lose_nothing(tmp_path):
    path = tmp_path / "data" / "ancia.db"
    store = Store(path)
    chat = store.create_chat("shared")["id"]
    results = run_together(path, "append", [chat] * 4)
    assert [r["error_count"] for r in results] == [0, 0, 0, 0], results
    history = store.history(chat)
    assert len(history) == 4000
    assert len({m["content"] for m in history}) == 4000
    store.close()


def test_eight_processes_opening_a_new_data_dir_together_all_succeed(tmp_path):
    path = tmp_path / "data" / "ancia.db"
    results = run_together(path, "open", list(range(8)))
    assert [r["error_count"] for r in results] == [0] * 8, results
    store = Store(path)
    assert len(store.list_chats()) == 8
    names = [m.name for m in migrations.applied(store.db)]
    assert names == [m.name for m in migrations._migrations]
    store.close()
