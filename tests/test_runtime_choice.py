"""Which runtime runs a model: MLX on Apple Silicon, llama.cpp on other machines when installed, said why."""

from __future__ import annotations

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.errors import InvalidValueError
from ancia_jupyter.model_manager import runtime_choice
from ancia_jupyter.model_manager.catalog import CATALOG_BY_ID, DEFAULT_MODEL_ID
from ancia_jupyter.model_manager.runtime_choice import choose


def test_this_linux_machine_runs_the_default_model_on_llama_cpp():
    info = ancia.models.info(DEFAULT_MODEL_ID)
    assert info["runtime"] == "llama_cpp" and "llama.cpp" in info["runtime_reason"]
    assert info["runtime_hint"] is None
    assert {m["id"]: m["runtime"] for m in ancia.models.list()}[DEFAULT_MODEL_ID] == "llama_cpp"


def test_apple_silicon_runs_mlx_even_with_llama_cpp_installed(monkeypatch):
    monkeypatch.setattr(runtime_choice.sys, "platform", "darwin")
    monkeypatch.setattr(runtime_choice.platform, "machine", lambda: "arm64")
    info = ancia.models.info(DEFAULT_MODEL_ID)
    assert info["runtime"] == "mlx_lm" and "Metal" in info["runtime_reason"]
    assert ancia.models.info("qwen2.5-vl-3b-instruct")["runtime"] == "mlx_vlm"


def test_without_llama_cpp_a_cpu_machine_falls_back_to_mlx_and_says_how_to_get_faster(monkeypatch):
    monkeypatch.setattr(runtime_choice, "llama_cpp_installed", lambda: False)
    info = ancia.models.info(DEFAULT_MODEL_ID)
    assert info["runtime"] == "mlx_lm" and "not installed" in info["runtime_reason"]
    assert "pip install 'ancia-jupyter[llamacpp]'" in info["runtime_hint"]


@pytest.mark.parametrize("apple,llama,expected", [
    (True, True, "mlx_lm"), (True, False, "mlx_lm"), (False, True, "llama_cpp"), (False, False, "mlx_lm")])
def test_auto_choice_table(apple, llama, expected):
    spec = CATALOG_BY_ID["qwen2.5-0.5b-instruct"]
    assert choose(spec, on_apple_silicon=apple, has_llama_cpp=llama).runtime == expected
    vision = CATALOG_BY_ID["qwen2.5-vl-3b-instruct"]
    assert choose(vision, on_apple_silicon=apple, has_llama_cpp=llama).runtime == "mlx_vlm"


def test_a_forced_runtime_is_kept_and_bad_choices_change_nothing():
    assert ancia.models.set_runtime(DEFAULT_MODEL_ID, "mlx")["runtime"] == "mlx_lm"
    assert ancia.models.info(DEFAULT_MODEL_ID)["runtime_reason"].startswith("set for this model")
    for model_id, runtime, message in [(DEFAULT_MODEL_ID, "gpu", "one of auto, mlx, llama_cpp"),
                                       ("qwen2.5-vl-3b-instruct", "llama_cpp", "only 'auto' applies")]:
        with pytest.raises(InvalidValueError, match=message):
            ancia.models.set_runtime(model_id, runtime)
    from ancia_jupyter.app import close_app

    close_app()  # a new kernel sees the same choice
    assert ancia.models.info(DEFAULT_MODEL_ID)["runtime"] == "mlx_lm"
    assert ancia.models.set_runtime(DEFAULT_MODEL_ID, "auto")["runtime"] == "llama_cpp"
