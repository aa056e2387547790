"""Kernel variables as context: ``describe_variables`` for ``context=[...]``, and ``kernel.variables``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ancia_jupyter as ancia
from ancia_jupyter.app import get_app
from ancia_jupyter.errors import InvalidValueError, ToolError
from ancia_jupyter.tools.kernel_context import describe_variables


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_cell("import math\n_private = 1\n", store_history=False)
    yield ip
    InteractiveShell.clear_instance()


@pytest.fixture
def kernel_vars(shell):
    shell.user_ns.update({
        "df": pd.DataFrame({"city": ["Lyon", "Oslo", "Kyoto", "Lima", "Perth", "Quito"],
                            "temp_c": [21.5, 4.0, 17.2, 19.9, 25.1, 13.0], "visits": [3, 1, 4, 1, 5, 9]}),
        "series": pd.Series([1.5, 2.5, 3.5], name="weights"),
        "matrix": np.arange(12, dtype=np.float32).reshape(3, 4),
        "names": ["ada", "grace", "linus"],
        "config": {"lr": 0.001, "epochs": 3},
        "greeting": "hello " * 500,
    })
    return shell


def test_describes_dataframes_arrays_and_plain_values(kernel_vars):
    text = describe_variables(["df", "matrix", "names", "series"])
    assert text.startswith("## Variables from the notebook kernel\n\n### `df`\n- type: `pandas.DataFrame`")
    assert "- shape: 6 rows × 3 columns" in text
    assert "- columns and dtypes: city: str, temp_c: float64, visits: int64" in text or \
           "- columns and dtypes: city: object, temp_c: float64, visits: int64" in text
    head = text.split("- head:\n```\n", 1)[1].split("```", 1)[0]
    assert "Lyon" in head and "Perth" in head and "Quito" not in head  # five rows
    assert "### `matrix`\n- type: `numpy.ndarray`\n- shape: (3, 4)\n- dtype: float32" in text
    assert "### `names`\n- type: `list`\n- length: 3\n- value:\n```\n['ada', 'grace', 'linus']\n```" in text
    assert "### `series`" in text and "- dtype: float64" in text and "- name: 'weights'" in text


def test_long_and_broken_reprs_are_cut_and_contained(kernel_vars):
    class Loud:
        def __repr__(self):
            return "L" * 10_000

    class Broken:
        def __repr__(self):
            raise RuntimeError("no repr for you")

    kernel_vars.user_ns.update(loud=Loud(), broken=Broken())
    text = describe_variables(["greeting", "loud", "broken"])
    assert "- length: 3000" in text and len(text) < 2500
    assert "Broken instance at 0x" in text  # reprlib's stand-in for a __repr__ that raises


def test_a_missing_name_is_named_in_the_error(kernel_vars):
    with pytest.raises(InvalidValueError, match="No variable named 'nope', 'gone' in the kernel"):
        describe_variables(["df", "nope", "gone"])


def test_outside_ipython_the_error_says_why():
    with pytest.raises(InvalidValueError, match="needs an IPython kernel"):
        describe_variables(["df"])


def test_the_tool_is_off_until_the_setting_or_the_chat_option_turns_it_on(kernel_vars):
    registry = get_app().tools
    assert "kernel_variables" not in [s["function"]["name"] for s in registry.schemas(None)]
    output, error = registry.call("kernel.variables", {})
    assert output is None and "kernel_context" in error
    with pytest.raises(ToolError, match="kernel_context"):
        registry.schemas(["kernel.variables"])

    chat = get_app().store.create_chat("with context", options={"kernel_context": True})
    other = get_app().store.create_chat("without")
    assert "kernel_variables" in [s["function"]["name"] for s in registry.schemas(None, chat_id=chat["id"])]
    others = registry.schemas(None, chat_id=other["id"])
    assert "kernel_variables" not in [s["function"]["name"] for s in others]
    listing, error = registry.call("kernel.variables", {}, chat_id=chat["id"])
    assert error is None
    assert "DataFrame, shape (6, 3)\n" in listing and listing.startswith("- `df`: pandas.")
    assert "- `names`: list, length 3" in listing and "- `matrix`: numpy.ndarray, shape (3, 4)" in listing
    for hidden in ("_private", "math", "In", "Out", "exit", "get_ipython"):
        assert f"`{hidden}`" not in listing

    ancia.settings.update(kernel_context=True)
    assert "kernel_variables" in [s["function"]["name"] for s in registry.schemas(None)]
    detail = ancia.tools.call("kernel.variables", name="config")
    assert detail == ("### `config`\n- type: `dict`\n- length: 2\n- value:\n```\n"
                      "{'epochs': 3, 'lr': 0.001}\n```")
    with pytest.raises(ToolError, match="No variable named 'ghost'"):
        ancia.tools.call("kernel.variables", name="ghost")


def test_chat_context_attaches_the_description_to_the_prompt(kernel_vars, tiny):
    response = ancia.chat("Which city is warmest?", context=["df"], tools=False, max_tokens=2)
    user = get_app().store.history(response.chat_id)[0]
    assert user["content"].startswith("Which city is warmest?\n\n## Variables from the notebook kernel")
    assert "Perth" in user["content"] and "25.1" in user["content"]
    with pytest.raises(InvalidValueError, match="'missing'"):
        ancia.chat("And this?", context=["missing"])
