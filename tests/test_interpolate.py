"""Interpolation of ``{name}``, ``{In[n]}``, ``{Out[n]}`` and ``{Err[n]}`` into prompts, in process."""

from __future__ import annotations

import numpy as np
import pytest
from IPython.core.error import UsageError

from ancia_jupyter.notebook.cell_errors import CellErrors
from ancia_jupyter.notebook.interpolate import MAX_CHARS, describe, interpolate


def fill(prompt: str, **namespace) -> str:
    errors = {3: "ZeroDivisionError: division by zero"}
    return interpolate(prompt, namespace, ["", "x = 1", "x + 1"], {2: 2}, errors)


def test_names_are_replaced_by_their_values():
    assert fill("What is {x}?", x=41) == "What is 41?"
    assert fill("Say {greeting}.", greeting="hello") == "Say hello."  # strings as they are, not their repr
    assert fill("{items} and {cfg}", items=[1, 2], cfg={"a": 1}) == "[1, 2] and {'a': 1}"


def test_attributes_can_be_referenced():
    class Point:
        x = 3

    assert fill("{p.x}", p=Point()) == "3"
    with pytest.raises(UsageError, match=r"\{p.y\}: Point has no attribute 'y'"):
        fill("{p.y}", p=Point())


def test_braces_that_are_not_references_survive():
    prompt = 'def f(): return {}\nd = {"a": 1}\nf"{value:.2f}" { x } {1} {x-1} {In} {{ not }}'
    assert fill(prompt, x=5, In=["a"]) == prompt.replace("{In}", "['a']")


def test_double_braces_write_a_literal_reference():
    assert fill("{{x}} is {x}; {{In[1]}}", x=5) == "{x} is 5; {In[1]}"


def test_unknown_name_is_a_clear_usage_error():
    with pytest.raises(UsageError) as info:
        fill("What is {nope}?")
    assert str(info.value) == ("{nope}: there is no variable 'nope' in the notebook. Define it, write "
                               "{{nope}} for literal braces, or pass --no-interpolate.")


def test_cells_inputs_outputs_and_errors():
    assert fill("{In[1]} then {In[2]} gives {Out[2]}") == "x = 1 then x + 1 gives 2"
    assert fill("{Err[3]}") == "ZeroDivisionError: division by zero"
    with pytest.raises(UsageError, match=r"\{In\[7\]\}: no cell 7 has run"):
        fill("{In[7]}")
    with pytest.raises(UsageError, match=r"\{Out\[1\]\}: cell 1 has no output"):
        fill("{Out[1]}")
    with pytest.raises(UsageError, match=r"\{Err\[2\]\}: cell 2 raised no error"):
        fill("{Err[2]}")
    assert interpolate("{In[1]}", {}, {1: "a = 2"}, {}, {}) == "a = 2"  # a mapping of inputs works too


def test_long_values_are_truncated_and_say_so():
    text = describe("a" * (MAX_CHARS + 10))
    assert text == "a" * MAX_CHARS + "… (10 more characters)"
    assert len(fill("{big}", big=list(range(10_000)))) < MAX_CHARS + 40


def test_arrays_are_summarised_with_shape_and_dtype():
    text = describe(np.arange(6, dtype=np.int32).reshape(2, 3))
    assert text.startswith("ndarray with shape (2, 3) and dtype int32:\narray([[0, 1, 2],")
    big = describe(np.zeros((1000, 1000)))
    assert big.startswith("ndarray with shape (1000, 1000) and dtype float64") and len(big) < MAX_CHARS + 40


class FakeFrame:
    """What interpolation reads from a pandas DataFrame: shape, columns, dtypes, head()."""

    shape = (100, 2)
    columns = ("age", "name")
    dtypes = "age      int64\nname    object"

    def head(self, n: int) -> str:
        return f"<first {n} rows>"


def test_dataframes_are_summarised_with_shape_dtypes_and_head():
    assert describe(FakeFrame()) == ("FakeFrame with shape (100, 2)\ndtypes:\nage      int64\n"
                                     "name    object\nfirst 5 rows:\n<first 5 rows>")


@pytest.fixture(scope="module")
def shell():
    from IPython.testing.globalipapp import start_ipython

    return start_ipython()


def test_cell_errors_records_what_raised_without_colours(shell):
    errors = CellErrors.install(shell)
    assert CellErrors.install(shell) is errors  # one recorder per shell
    result = shell.run_cell("def g():\n    return 1 / 0\ng()", store_history=True)
    count = result.execution_count
    assert errors.last() == count and errors.code[count] == "def g():\n    return 1 / 0\ng()"
    text = errors.errors[count]
    assert text.startswith("ZeroDivisionError ") and "\x1b[" not in text  # no colours, no rule of dashes
    assert "----> 2     return 1 / 0" in text and text.endswith("ZeroDivisionError: division by zero")

    syntax = shell.run_cell("x = (", store_history=True)
    assert errors.last() == syntax.execution_count and "SyntaxError" in errors.errors[syntax.execution_count]

    shell.run_cell("from IPython.core.error import UsageError\nraise UsageError('typo')", store_history=True)
    shell.run_cell("raise KeyboardInterrupt", store_history=True)
    shell.run_cell("1 + 1", store_history=True)
    assert errors.last() == syntax.execution_count  # usage errors and Ctrl-C are not errors to fix
