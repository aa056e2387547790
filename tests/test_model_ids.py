"""A model id names a folder in the model cache: no id, however it is spelled, reaches outside it."""

from __future__ import annotations

import os

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.app import get_app
from ancia_jupyter.errors import InvalidValueError, ModelError
from ancia_jupyter.paths import data_dir, models_dir

HOSTILE_IDS = [".", "..", "a/../..", "../models", "/etc", "/tmp/x", "~", "a/b", "a\\b", "", " ", "-rf",
               ".hidden", "x" * 101, "a\x00b", "nul\n"]


@pytest.fixture
def gguf(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\x00" * 64)
    return path


def tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("model_id", HOSTILE_IDS)
def test_hostile_ids_are_refused_in_one_line_and_remove_nothing(model_id, gguf, tmp_path):
    ancia.chats.create("keep me")
    models_dir().mkdir(parents=True, exist_ok=True)
    (models_dir() / "other-model").mkdir()
    (models_dir() / "other-model" / "config.json").write_text("{}")
    (tmp_path / "beside.txt").write_text("a file beside the data directory")
    before = tree(tmp_path)
    for call in (lambda: ancia.models.register(model_id, str(gguf)),
                 lambda: ancia.models.delete_cache(model_id)):
        with pytest.raises((InvalidValueError, ancia.errors.NotFoundError)) as error:
            call()
        assert "\n" not in str(error.value).strip() or model_id.endswith("\n")
    assert tree(tmp_path) == before
    assert (data_dir() / "ancia.db").exists() and [c["title"] for c in ancia.chats.list()] == ["keep me"]


def test_an_id_stored_before_ids_were_checked_cannot_remove_anything(gguf, tmp_path):
    """A database row with ``..`` as its id (written by hand or by an old version) is never a path."""
    store = get_app().store
    store.add_local_model("..", str(gguf), "gguf")
    models_dir().mkdir(parents=True, exist_ok=True)
    before = tree(tmp_path)
    with pytest.raises(InvalidValueError, match="not a valid model id"):
        ancia.models.delete_cache("..")
    assert ".." not in [m["id"] for m in ancia.models.list()]
    ancia.models.unregister("..")  # forgetting the row still works, and touches no file
    assert tree(tmp_path) == before and all(r["id"] != ".." for r in store.local_models())


def test_a_symlink_in_the_cache_is_removed_not_what_it_points_to(gguf, tmp_path):
    ancia.models.register("linked", str(gguf))
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    models_dir().mkdir(parents=True, exist_ok=True)
    os.symlink(outside, models_dir() / "linked")
    assert ancia.models.delete_cache("linked") is True
    assert not (models_dir() / "linked").exists() and (outside / "config.json").exists()


def test_a_file_that_is_not_gguf_is_refused_at_register_time(tmp_path):
    fake = tmp_path / "random.gguf"
    fake.write_bytes(os.urandom(4096))
    with pytest.raises(ModelError, match="is not a GGUF model file"):
        ancia.models.register("random", str(fake))
    assert "random" not in [m["id"] for m in ancia.models.list()]


def test_valid_ids_with_dots_dashes_and_underscores_work(gguf):
    for model_id in ("my-model", "Qwen2.5_local", "a.b.c", "7b"):
        assert ancia.models.register(model_id, str(gguf))["id"] == model_id
        assert ancia.models.delete_cache(model_id) is False  # nothing converted yet
