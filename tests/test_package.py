"""The package itself: cheap to import, one public surface, a working ``ancia`` command."""

from __future__ import annotations

import json
import subprocess
import sys

import ancia_jupyter as ancia

HEAVY = ("mlx", "mlx_lm", "transformers", "numpy", "sqlite_utils")


def run_python(code: str, **env) -> str:
    import os

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, check=True)
    return done.stdout


def test_import_loads_nothing_heavy():
    out = run_python(f"import sys, json, ancia_jupyter; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert json.loads(out) == []


def test_load_ext_loads_nothing_heavy(tmp_path):
    code = (
        "import sys, json\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'ancia_jupyter')\n"
        f"print(json.dumps([m for m in {HEAVY[:3]!r} if m in sys.modules]))\n"
    )
    out = run_python(code, ANCIA_DATA_DIR=str(tmp_path))
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_public_api_is_in_all():
    for name in ("chat", "stop", "Chat", "chats", "models", "settings", "app_state", "reset", "Response"):
        assert name in ancia.__all__ and getattr(ancia, name) is not None
    assert ancia.models.list and ancia.chats.create and ancia.settings.update


def test_cli_lists_models_and_manages_chats(tiny, monkeypatch, capsys):
    from ancia_jupyter.cli import main

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m-instruct" in out and "tiny" in out and "*" in out
    rows = {line.split()[1] if line.startswith("*") else line.split()[0]: line for line in out.splitlines()[1:]}
    assert "llama_cpp" in rows["smollm2-135m-instruct"] and "mlx_lm" in rows["tiny"]
    assert main(["chat", "hello there"]) == 0
    captured = capsys.readouterr()
    assert "[chat 1 · complete" in captured.err
    assert main(["chats", "list"]) == 0 and "hello there" in capsys.readouterr().out
    assert main(["chats", "export", "1", "--format", "json"]) == 0
    assert [m["role"] for m in json.loads(capsys.readouterr().out)["messages"]] == ["user", "assistant"]
    assert main(["models", "info", "nope"]) == 1
    assert "Unknown model 'nope'" in capsys.readouterr().err


def test_cli_is_installed_as_a_console_script(tmp_path):
    import os
    import shutil

    exe = shutil.which("ancia", path=os.path.dirname(sys.executable))
    assert exe
    done = subprocess.run([exe, "models", "list"], capture_output=True, text=True,
                          env={**os.environ, "ANCIA_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0 and "smollm2-135m-instruct" in done.stdout


def test_eager_load_loads_the_selected_model_when_the_extension_loads(tiny, ancia_home):
    code = (
        "import time, json\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'ancia_jupyter')\n"
        "import ancia_jupyter as ancia\n"
        "deadline = time.time() + 60\n"
        "while ancia.app_state()['loaded_model'] is None and time.time() < deadline:\n"
        "    time.sleep(0.1)\n"
        "print(json.dumps(ancia.app_state()['loaded_model']))\n"
    )
    import os

    from ancia_jupyter.app import close_app

    close_app()
    out = run_python(code, ANCIA_DATA_DIR=str(ancia_home), ANCIA_MODELS_DIR=os.environ["ANCIA_MODELS_DIR"],
                     ANCIA_ENABLE_MODEL_EAGER_LOAD="1")
    assert json.loads(out.strip().splitlines()[-1]) == "tiny"
    lazy = run_python(code.replace("deadline = time.time() + 60", "deadline = time.time() + 2"),
                      ANCIA_DATA_DIR=str(ancia_home), ANCIA_MODELS_DIR=os.environ["ANCIA_MODELS_DIR"])
    assert json.loads(lazy.strip().splitlines()[-1]) is None
