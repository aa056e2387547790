"""The original Ancia app's environment variables: the data dir's old name is honoured, the server's settings
are named once as doing nothing here, and the eager load also starts on ``import ancia_jupyter`` in a kernel."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from ancia_jupyter import paths
from ancia_jupyter.app import close_app, get_app
from ancia_jupyter.notebook import extension


def test_the_backend_data_dir_is_an_alias_and_ancia_data_dir_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("ANCIA_DATA_DIR")
    monkeypatch.setenv("ANCIA_BACKEND_DATA_DIR", str(tmp_path / "old-name"))
    assert paths.data_dir() == tmp_path / "old-name"
    assert get_app().data_dir == tmp_path / "old-name" and (tmp_path / "old-name" / "ancia.db").is_file()
    close_app()
    monkeypatch.setenv("ANCIA_DATA_DIR", str(tmp_path / "new-name"))
    assert paths.data_dir() == tmp_path / "new-name"


@pytest.fixture
def shell(monkeypatch):
    monkeypatch.setattr(extension, "_named_server_only", False)
    shell = InteractiveShell.instance()
    yield shell
    shell.extension_manager.unload_extension("ancia_jupyter")
    InteractiveShell.clear_instance()


def test_the_server_settings_are_named_once_with_why_they_do_nothing(shell, monkeypatch, capsys):
    monkeypatch.setenv("ANCIA_BACKEND_HOST", "0.0.0.0")
    monkeypatch.setenv("ANCIA_CORS_ALLOW_ORIGINS", "*")
    shell.extension_manager.load_extension("ancia_jupyter")
    err = capsys.readouterr().err
    assert err == ("ancia: ANCIA_BACKEND_HOST, ANCIA_CORS_ALLOW_ORIGINS are set but do nothing here: ancia runs "
                   "inside the kernel, so there is no server to bind or to reach from a browser.\n")
    shell.extension_manager.unload_extension("ancia_jupyter")
    shell.extension_manager.load_extension("ancia_jupyter")
    assert capsys.readouterr().err == ""


def test_nothing_is_said_when_no_server_setting_is_set(shell, monkeypatch, capsys):
    for name in extension.SERVER_ONLY:
        monkeypatch.delenv(name, raising=False)
    shell.extension_manager.load_extension("ancia_jupyter")
    assert capsys.readouterr().err == ""


WAIT_FOR_LOAD = (
    "import json, sys, time, threading\n"
    "import ancia_jupyter as ancia\n"
    "deadline = time.time() + {seconds}\n"
    "while 'ancia_jupyter.app' not in sys.modules and time.time() < deadline:\n"
    "    time.sleep(0.05)\n"
    "while time.time() < deadline and ('ancia_jupyter.app' not in sys.modules\n"
    "                                  or ancia.app_state()['loaded_model'] is None):\n"
    "    time.sleep(0.1)\n"
    "print(json.dumps({{'loaded': 'ancia_jupyter.app' in sys.modules and ancia.app_state()['loaded_model'],\n"
    "                  'threads': [t.name for t in threading.enumerate() if t.name == 'ancia-eager-load']}}))\n"
)


def in_a_kernel(code: str, env: dict[str, str], cwd: Path) -> str:
    """Run ``code`` in a fresh kernel with ``env``; its stdout."""
    from jupyter_client import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(cwd))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        msg_id = client.execute(code)
        out, deadline = [], time.monotonic() + 180
        while True:
            try:
                msg = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the kernel did not finish; printed {out}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_importing_ancia_in_a_kernel_starts_the_eager_load(tiny, ancia_home, tmp_path):
    close_app()
    env = {k: v for k, v in os.environ.items() if k not in ("ANCIA_OFFLINE", "ANCIA_PLUGIN_REGISTRY_URL")}
    env.update(ANCIA_DATA_DIR=str(ancia_home), ANCIA_ENABLE_MODEL_EAGER_LOAD="1")
    out = in_a_kernel(WAIT_FOR_LOAD.format(seconds=90) + "print(get_ipython().find_line_magic('ancia'))\n",
                      env, tmp_path)
    first, second = out.strip().splitlines()[-2:]
    assert json.loads(first)["loaded"] == "tiny"
    assert second == "None"  # loaded without %load_ext


def test_a_plain_python_import_loads_nothing_even_with_the_flag(tiny, ancia_home):
    close_app()
    env = {**os.environ, "ANCIA_DATA_DIR": str(ancia_home), "ANCIA_ENABLE_MODEL_EAGER_LOAD": "1"}
    done = subprocess.run([sys.executable, "-c", WAIT_FOR_LOAD.format(seconds=1.5)], capture_output=True,
                          text=True, env=env, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"loaded": False, "threads": []}
