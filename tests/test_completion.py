"""Inline completion in the kernel: the prompt a fill-in-the-middle model reads and the one a plain model reads,
the prompt cache between keystrokes, a newer request stopping the older, a busy kernel, the live objects near
the cursor, a completion model beside the chat model, and a completion while a chat answer streams.

The fill-in-the-middle model is the tiny random GGUF with Qwen's three FIM control tokens (tests/tiny_fim.py);
what it writes is scripted (tests/scripted.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from scripted import says, scripted, slow
from tiny_fim import FIM, build_tiny_fim_gguf

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.api_completion import completion_service
from ancia_jupyter.app import get_app
from ancia_jupyter.completion.live_objects import describe_near
from ancia_jupyter.completion.prompt import PromptWriter
from ancia_jupyter.completion.request import CompletionRequest
from ancia_jupyter.completion.shaping import shape
from ancia_jupyter.errors import MemoryFitError
from ancia_jupyter.model_manager.catalog import CATALOG_BY_ID, QWEN_FIM
from ancia_jupyter.runtimes.base import common_prefix
from ancia_jupyter.runtimes.llama_cpp import LlamaCppRuntime

CELLS = ("import math\nimport pandas as pd",
         "def area(radius):\n    return math.pi * radius ** 2",
         "\n".join(f"value_{i} = area({i})" for i in range(8)))
CITIES = pd.DataFrame({"city": ["Oslo", "Rome", "Lima"], "temp": [3.5, 18.0, 19.2]})


@pytest.fixture(scope="module")
def fim_gguf(tmp_path_factory) -> Path:
    """The tiny GGUF with ``<|fim_prefix|>``, ``<|fim_suffix|>`` and ``<|fim_middle|>`` as control tokens."""
    return build_tiny_fim_gguf(tmp_path_factory.mktemp("fim") / "tiny-coder.gguf")


@pytest.fixture
def coder(fim_gguf) -> str:
    """The FIM model registered as ``tiny-coder`` and picked: it chats and completes."""
    ancia.models.register("tiny-coder", str(fim_gguf), title="Tiny random coder")
    ancia.models.select("tiny-coder")
    ancia.models.set_params("tiny-coder", temperature=0.0, max_tokens=64)
    return "tiny-coder"


@pytest.fixture(scope="module")
def coder_runtime(fim_gguf):
    runtime = LlamaCppRuntime()
    runtime.load(fim_gguf)
    yield runtime
    runtime.unload()


def request(prefix: str, suffix: str = "", mode: str = "line", cells=CELLS) -> CompletionRequest:
    return CompletionRequest(prefix, suffix, tuple(cells), None, mode)  # type: ignore[arg-type]


# ---- the prompt ----------------------------------------------------------------------------------------------

def test_a_fim_model_reads_the_prefix_then_the_suffix_then_writes_the_middle(coder_runtime):
    prompt = PromptWriter(coder_runtime, None, 1000).write(request("total = area(", ")\nprint(total)"), "")
    ids = [coder_runtime.special_token(name) for name in FIM]
    assert None not in ids
    assert prompt.fim and prompt.tokens[0] == ids[0] and prompt.tokens[-1] == ids[2]
    assert prompt.tokens.count(ids[1]) == 1 and 0 < prompt.tokens.index(ids[1]) < len(prompt.tokens) - 1
    text = prompt.text
    assert text.startswith(QWEN_FIM.prefix) and text.endswith(QWEN_FIM.middle)
    assert (text.index("def area") < text.index("total = area(") < text.index(QWEN_FIM.suffix)
            < text.index(")\nprint(total)"))
    before = coder_runtime.text_tokens(text[len(QWEN_FIM.prefix):text.index(QWEN_FIM.suffix)])
    assert prompt.tokens[1:1 + len(before)] == before  # the cells above and the cell as typed, in that order


def test_a_model_without_fim_tokens_completes_from_the_text_before_the_cursor(smollm2_gguf):
    runtime = LlamaCppRuntime()
    runtime.load(smollm2_gguf)
    try:
        assert runtime.special_token(QWEN_FIM.prefix) is None
        prompt = PromptWriter(runtime, None, 1000).write(request("total = area(", ")\nprint(total)"), "")
    finally:
        runtime.unload()
    assert not prompt.fim
    assert prompt.text.endswith("# %%\ntotal = area(") and "print(total)" not in prompt.text
    assert prompt.text.index("import math") < prompt.text.index("def area") < prompt.text.index("value_7")


def test_the_default_model_suggests_and_ancia_complete_returns_it(smollm2):
    assert ancia.models.selected() == smollm2 and not CATALOG_BY_ID[smollm2].fim
    with scripted(says(then="radius * 2)\nprint(1)")):
        assert ancia.complete("def diameter(radius):\n    return (", cells=CELLS) == "radius * 2)"
    found = completion_service().complete(request("x = "))
    assert not found.fim and found.model_id == smollm2


def test_the_cells_above_that_do_not_fit_are_dropped_from_the_top_and_the_start_stays_put(coder_runtime):
    cells = tuple(f"cell_{i} = {i}  # " + "word " * 20 for i in range(40))
    writer = PromptWriter(coder_runtime, None, 600)
    first = writer.write(CompletionRequest("x = ", "", cells, None, "line"), "")
    assert "cell_39" in first.text and "cell_0 " not in first.text and len(first.tokens) <= 600
    kept = first.text[first.text.index("cell_"):].split(" ", 1)[0]
    again = writer.write(CompletionRequest("x = 1\ny = ", "", cells, None, "line"), "")
    assert again.text[again.text.index("cell_"):].split(" ", 1)[0] == kept  # typing on moves nothing
    nxt = writer.write(CompletionRequest("z = ", "", (*cells, "x = 1"), None, "line"), "")
    assert common_prefix(first.tokens, nxt.tokens) > len(first.tokens) * 0.8  # the next cell starts the same


# ---- the cache and the model worker ---------------------------------------------------------------------------

def test_typing_three_characters_reads_only_the_new_tokens(coder):
    service = completion_service()
    with scripted(says(then="9)")):
        first = service.complete(request("total = area(", ")"))
        second = service.complete(request("total = area(abc", ")"))
    assert first.read_tokens == first.prompt_tokens > 100
    runtime = get_app().models.runtime

    def tokens(text: str) -> list[int]:
        head, rest = text[len(QWEN_FIM.prefix):].split(QWEN_FIM.suffix)
        suffix, _ = rest.split(QWEN_FIM.middle)
        ids = [runtime.special_token(name) for name in FIM]
        return [ids[0], *runtime.text_tokens(head), ids[1], *runtime.text_tokens(suffix), ids[2]]

    new = len(tokens(second.prompt)) - common_prefix(tokens(first.prompt), tokens(second.prompt))
    assert second.read_tokens == new <= 6
    assert second.text == "9" and second.reason in ("stop", "line")  # the editor's ")" is not written twice


def test_a_newer_request_stops_the_older_within_a_token(coder):
    service = completion_service()
    seen: list[str] = []
    results = {}
    with scripted(says(then="a_very_long_name_" * 40), slow(0.05)):
        older = threading.Thread(target=lambda: results.setdefault("older", [
            seen.append(u.text) or u for u in service.stream(request("name = "))][-1]))
        older.start()
        deadline = time.monotonic() + 30
        while len(seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        shown = len(seen)
        asked = time.monotonic()
        newer = service.complete(request("name = a"))
        older.join(30)
    first_update = results["older"]
    assert first_update.reason == "cancelled" and first_update.text == ""
    assert first_update.generated_tokens <= shown + 2  # it stopped within a token of the newer request
    assert newer.reason == "length" and newer.text.startswith("a_very")
    assert newer.first_text_s is not None and newer.first_text_s < 1.0 + 0.05 * 3
    assert time.monotonic() - asked < 10


def test_a_completion_runs_between_the_tokens_of_a_chat_answer(coder):
    ancia.models.load()
    long_answer = "word " * 300
    with scripted(says(long_answer, then="done\nmore"), slow(0.02)):
        answer = ancia.chat("Write a lot.", stream=True, tools=False, max_tokens=400)
        next(event for event in answer if isinstance(event, ev.Token))
        started = time.monotonic()
        found = completion_service().complete(request("status = "))
        took = time.monotonic() - started
        streaming = not answer.finished
        answer.stop()
        answer.response()
    assert streaming and found.text == "done" and found.reason == "line"
    assert took < 3 and found.first_text_s is not None and found.first_text_s < 2


# ---- the live objects -------------------------------------------------------------------------------------

def test_a_dataframe_near_the_cursor_is_described_with_its_columns_and_dtypes():
    def scale(frame, factor=2.0):
        """Multiply every number."""
        return frame * factor

    class Station:
        kind = "weather"

        def __init__(self) -> None:
            self.name, self.height = "Blindern", 94

        def reading(self) -> float:
            return 1.0

    text = describe_near('df.groupby("', "", {"df": CITIES, "unused": CITIES})
    assert "df: pandas.DataFrame, 3 rows × 2 columns: city (" in text and "temp (float64)" in text
    assert "unused" not in text
    more = describe_near("scale(df) + station.", "\nlookup['", {"scale": scale, "df": CITIES, "station": Station(),
                                                                  "lookup": {"Oslo": 1, "Rome": 2}})
    assert "# scale(frame, factor=2.0): Multiply every number." in more
    assert "station: " in more and "height, kind, name, reading" in more
    assert "lookup: dict, length 2; keys: 'Oslo', 'Rome'" in more
    assert describe_near("x = 1", "", {}) == ""


def test_the_prompt_holds_the_live_dataframes_columns_and_the_model_is_asked_for_one(coder):
    with scripted(says(then='city")')):
        found = completion_service().complete(request('by_city = df.groupby("', '")'), namespace={"df": CITIES})
    assert "# df: pandas.DataFrame, 3 rows × 2 columns: city (" in found.prompt
    assert found.prompt.index("Live objects") < found.prompt.index('by_city = df.groupby("')
    assert found.text == "city"  # the closing quote and bracket the editor put there are not written twice


# ---- a busy kernel ----------------------------------------------------------------------------------------

class FakeComm:
    comm_id = "completion-test"

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.handlers: dict = {}
        self.closed = False

    def send(self, data: dict) -> None:
        self.sent.append(data)

    def on_msg(self, handler) -> None:
        self.handlers["msg"] = handler

    def on_close(self, handler) -> None:
        self.handlers["close"] = handler

    def close(self) -> None:
        self.closed = True

    def message(self, data: dict) -> None:
        self.handlers["msg"]({"content": {"data": data}})

    def done(self, request_id: int, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.sent if m.get("type") == "done" and m.get("id") == request_id]
            if found:
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no reply to request {request_id}: {self.sent}")


def test_a_kernel_running_a_cell_gives_no_suggestion_and_an_idle_one_does(coder):
    from IPython.core.interactiveshell import InteractiveShell

    from ancia_jupyter.notebook import completion_comm

    shell = InteractiveShell.instance()
    comm = FakeComm()
    try:
        completion_comm.register_completion_target(shell)
        completion_comm._on_open(comm, {})
        assert comm.sent[0] == {"type": "ready", "version": ancia.__version__}
        shell.user_ns["ask"] = lambda: comm.message({"type": "complete", "id": 1, "prefix": "x = ", "cells": []})
        with scripted(says(then="42")):
            shell.run_cell("ask()")  # the request arrives while this cell runs
            busy = comm.done(1)
            comm.message({"type": "complete", "id": 2, "prefix": "x = ", "suffix": "", "cells": list(CELLS),
                          "cell_index": 7, "mode": "line"})
            idle = comm.done(2)
    finally:
        shell.events.unregister("pre_run_cell", completion_comm.cells_running.started)
        shell.events.unregister("post_run_cell", completion_comm.cells_running.ended)
        completion_comm.unregister_completion_target(shell)
        InteractiveShell.clear_instance()
    assert busy == {"type": "done", "id": 1, "text": "", "reason": "busy"}
    assert idle["text"] == "42" and idle["reason"] in ("stop", "line") and idle["model"] == coder
    assert {"type": "chunk", "id": 2, "text": "42"} in comm.sent


def test_a_cancel_message_stops_the_request_it_names(coder):
    from ancia_jupyter.notebook.completion_comm import CompletionLink

    sent: list[dict] = []
    link = CompletionLink(sent.append)
    with scripted(says(then="word_" * 100), slow(0.05)):
        link.handle({"type": "complete", "id": 5, "prefix": "name = ", "mode": "block"})
        deadline = time.monotonic() + 30
        while not any(m.get("type") == "chunk" for m in sent) and time.monotonic() < deadline:
            time.sleep(0.01)
        link.handle({"type": "cancel", "id": 5})
        while not any(m.get("type") == "done" for m in sent) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [m for m in sent if m["type"] == "done"] == [{"type": "done", "id": 5, "text": "", "reason": "cancelled",
                                                        "model": coder}]


# ---- a completion model beside the chat model -----------------------------------------------------------------

def test_a_completion_model_loads_beside_the_chat_model_and_goes_with_it(coder, tiny):
    ancia.settings.update(completion_model=coder)
    ancia.models.load()  # the chat model, tiny
    with scripted(says(then="1")):
        found = completion_service().complete(request("x = "))
    resident = get_app().models.resident
    assert found.model_id == coder and found.fim
    assert resident.model_id == tiny and resident.completion.model_id == coder
    assert {m["id"]: m["status"] for m in ancia.models.list()}[coder] == "loaded"
    ancia.models.unload()
    assert resident.model_id is None and resident.completion.model_id is None


def test_the_memory_check_counts_the_chat_model_as_staying(coder, tiny, monkeypatch):
    from ancia_jupyter.model_manager import manager

    models = get_app().models
    ancia.settings.update(completion_model=coder)
    ancia.models.load()
    need = models.memory_mb(models.spec(coder))
    monkeypatch.setattr(manager, "available_memory_mb", lambda: need - 1)
    assert models.fits(models.spec(coder))  # in place of the chat model it would fit
    assert not models.fits(models.spec(coder), beside=True)
    with pytest.raises(MemoryFitError, match="needs about"):
        completion_service().complete(request("x = "))


def test_without_a_completion_model_the_chat_model_completes_with_no_second_model(coder):
    with scripted(says(then="1")):
        found = completion_service().complete(request("x = "))
    resident = get_app().models.resident
    assert found.model_id == coder == resident.model_id and resident.completion.model_id is None


# ---- the suggestion's shape --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "prefix", "suffix", "mode", "expected"), [
    ('city")\nprint(1)', 'df.groupby("', '")', "line", "city"),
    ("foo(1)", "print(", ")", "line", "foo(1)"),  # a model that saw the suffix is trusted
    ("foo(1))", "print(", ")", "line", "foo(1)"),
    ("\n    y = x * 2\n    return y\n\nprint(f(1))", "def f(x):", "", "block", "\n    y = x * 2\n    return y"),
    ("\n    y = x * 2\n    return y\n\nprint(f(1))", "def f(x):", "", "line", "\n    y = x * 2"),
    ('data.csv")\ndf.head()\n', 'df = pd.read_csv("', "", "block", 'data.csv")'),
    ("import pandas as pd", "import pandas as pd", "", "line", ""),  # never the line before the cursor again
    ("x = 1\ny = 2\n", "a = 0\n", "\ny = 2", "block", "x = 1"),  # never the cell's next line again
    ("1<|endoftext|>junk", "x = ", "", "line", "1"),
    ("   \n", "x = ", "", "line", ""),
])
def test_a_suggestion_is_one_line_or_one_block_and_never_repeats_the_cell(raw, prefix, suffix, mode, expected):
    assert shape(raw, prefix, suffix, mode, final=True).text == expected
