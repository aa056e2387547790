"""Tools from plain callables: schemas, argument checks, and every way a call can go wrong."""

from __future__ import annotations

import dataclasses
import enum
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import Annotated, Literal

import pydantic
import pytest

import ancia_jupyter as ancia
from ancia_jupyter.app import close_app, get_app
from ancia_jupyter.errors import NotFoundError, ToolError
from ancia_jupyter.tools import calling
from ancia_jupyter.tools.schema import ArgumentError, check_arguments, parameters, parse_docstring


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Address(pydantic.BaseModel):
    city: str
    zip: int


def props(func):
    return parameters(func, parse_docstring(func.__doc__)[1]).schema


# -- schemas -----------------------------------------------------------------------------------------


def test_schema_of_plain_types_defaults_and_google_docstring():
    def f(name: str, count: int, ratio: float = 0.5, loud: bool = False):
        """Greet someone.

        Args:
            name: Who to greet.
            count (int): How many times,
                at most ten.
        """

    schema = props(f)
    assert schema["properties"] == {
        "name": {"type": "string", "description": "Who to greet."},
        "count": {"type": "integer", "description": "How many times, at most ten."},
        "ratio": {"type": "number", "default": 0.5},
        "loud": {"type": "boolean", "default": False},
    }
    assert schema["required"] == ["name", "count"]
    assert schema["additionalProperties"] is False
    assert parse_docstring(f.__doc__)[0] == "Greet someone."


def test_schema_of_literal_enum_optional_containers_annotated():
    def f(mode: Literal["fast", "slow"], color: Color, limit: int | None = None, tags: list[str] = (),
          weights: dict[str, float] | None = None, pair: tuple[int, str] = (1, "a"),
          size: Annotated[int, "Size in pixels."] = 3, anything=None, colors: list[Color] | None = None):
        pass

    p = props(f)["properties"]
    assert p["mode"] == {"type": "string", "enum": ["fast", "slow"]}
    assert p["color"] == {"type": "string", "enum": ["red", "green"]}
    assert p["limit"] == {"type": ["integer", "null"], "default": None}
    assert p["tags"] == {"type": "array", "items": {"type": "string"}}
    assert p["weights"] == {"anyOf": [{"type": "object", "additionalProperties": {"type": "number"}},
                                      {"type": "null"}], "default": None}
    assert p["pair"] == {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}],
                         "minItems": 2, "maxItems": 2}
    assert p["size"] == {"type": "integer", "description": "Size in pixels.", "default": 3}
    assert p["anything"] == {"default": None}
    assert p["colors"]["anyOf"][0] == {"type": "array", "items": {"type": "string", "enum": ["red", "green"]}}


def test_numpy_and_sphinx_docstrings():
    def numpy_style(a: int, b: int):
        """Add numbers.

        Parameters
        ----------
        a : int
            The first one.
        b : int
            The second one.

        Returns
        -------
        int
        """

    def sphinx_style(a: int):
        """Double it.

        :param a: The number
            to double.
        :returns: twice a
        """

    assert parse_docstring(numpy_style.__doc__) == (
        "Add numbers.", {"a": "The first one.", "b": "The second one."})
    assert parse_docstring(sphinx_style.__doc__) == ("Double it.", {"a": "The number to double."})


def test_pydantic_and_dataclass_parameters_are_described_and_converted():
    def f(where: Address, point: Point):
        return where, point

    params = parameters(f)
    assert params.schema["properties"]["where"]["properties"]["city"]["type"] == "string"
    assert params.schema["properties"]["where"]["required"] == ["city", "zip"]
    assert params.schema["properties"]["point"]["required"] == ["x"]
    kwargs = check_arguments(params, {"where": {"city": "Lyon", "zip": 69001}, "point": {"x": 1}})
    assert isinstance(kwargs["where"], Address) and kwargs["where"].zip == 69001
    assert kwargs["point"] == Point(1.0, 0.0)
    with pytest.raises(ArgumentError, match="where does not fit Address"):
        check_arguments(params, {"where": {"city": "Lyon"}, "point": {"x": 1}})
    with pytest.raises(ArgumentError, match="unknown field"):
        check_arguments(params, {"where": {"city": "Lyon", "zip": 1}, "point": {"x": 1, "z": 2}})


def test_arguments_are_checked_and_converted():
    def f(n: int, x: float, color: Color, pair: tuple[int, int], mode: Literal["a", "b"] = "a",
          maybe: int | None = None):
        pass

    params = parameters(f)
    good = check_arguments(params, {"n": 3.0, "x": 2, "color": "green", "pair": [1, 2], "maybe": None})
    assert good == {"n": 3, "x": 2.0, "color": Color.GREEN, "pair": (1, 2), "maybe": None}
    assert type(good["n"]) is int and type(good["x"]) is float
    base = {"n": 1, "x": 1.0, "color": "red", "pair": [1, 2]}
    cases = [
        ({"x": 1.0, "color": "red", "pair": [1, 2]}, "missing required argument\\(s\\): n"),
        ({**base, "n": "3"}, "n must be an integer, not str"),
        ({**base, "n": True}, "n must be an integer, not bool"),
        ({**base, "x": "hot"}, "x must be a number"),
        ({**base, "color": "blue"}, "color must be one of 'red', 'green'"),
        ({**base, "mode": "c"}, "mode must be one of 'a', 'b'"),
        ({**base, "pair": [1]}, "exactly 2 items"),
        ({**base, "pair": [1, "2"]}, r"pair\[1\] must be an integer"),
        ({**base, "maybe": "x"}, "maybe must be an integer or null"),
        ({**base, "extra": 1}, "unknown argument\\(s\\): extra"),
    ]
    for arguments, message in cases:
        with pytest.raises(ArgumentError, match=message):
            check_arguments(params, arguments)
    with pytest.raises(ArgumentError, match="must be a JSON object"):
        check_arguments(params, ["n"])


# -- registering -------------------------------------------------------------------------------------


def test_a_tool_decorated_before_the_app_exists_is_picked_up(ancia_home, monkeypatch):
    close_app()

    @ancia.tool
    def fahrenheit(celsius: float) -> float:
        """Convert a temperature from Celsius to Fahrenheit."""
        return celsius * 9 / 5 + 32

    assert fahrenheit(100) == 212  # still a plain function
    names = [t["name"] for t in ancia.tools.list()]
    assert "fahrenheit" in names and {"system.time", "chat.set_mood", "web.visit.website"} <= set(names)
    assert ancia.tools.schema("fahrenheit") == {"type": "function", "function": {
        "name": "fahrenheit", "description": "Convert a temperature from Celsius to Fahrenheit.",
        "parameters": {"type": "object", "properties": {"celsius": {"type": "number"}},
                       "required": ["celsius"], "additionalProperties": False}}}
    assert ancia.tools.call("fahrenheit", celsius=21) == "69.8"
    close_app()  # the app closed and started again (%unload_ext, %load_ext) picks it up again
    assert "fahrenheit" in [t["name"] for t in ancia.tools.list()]
    monkeypatch.setenv("ANCIA_DATA_DIR", str(ancia_home.parent / "other"))  # another data dir: another
    assert "fahrenheit" not in [t["name"] for t in ancia.tools.list()]  # assistant, without the user's tools


def test_decorating_after_start_and_redefining_replaces():
    get_app()

    @ancia.tool(name="greet", description="Say hello.")
    def first(name: str) -> str:
        return f"hello {name}"

    assert ancia.tools.call("greet", {"name": "Ada"}) == "hello Ada"

    @ancia.tool(name="greet")
    def second(name: str, polite: bool = True) -> str:
        return f"good day {name}"

    assert ancia.tools.call("greet", name="Ada") == "good day Ada"
    assert "polite" in ancia.tools.schema("greet")["function"]["parameters"]["properties"]
    ancia.tools.unregister("greet")
    assert "greet" not in [t["name"] for t in ancia.tools.list()]
    with pytest.raises(ToolError, match="a built-in tool, not one of yours"):
        ancia.tools.unregister("system.time")


def test_dotted_names_get_a_safe_alias_that_maps_back():
    ancia.tools.register(lambda text: text.upper(), name="text.shout", description="Shout it.")
    schema = ancia.tools.schema("text.shout")
    assert schema["function"]["name"] == "text_shout"
    registry = get_app().tools
    assert registry.call("text_shout", {"text": "hi"}) == ("HI", None)
    assert registry.call("text.shout", {"text": "hi"}) == ("HI", None)
    assert registry.resolve("text_shout") == "text.shout"
    assert [s["function"]["name"] for s in registry.schemas(["text.shout", "web.search.duckduckgo"])] == [
        "text_shout", "web_search_duckduckgo"]


def test_bad_names_and_names_taken_by_builtins_are_refused():
    get_app()
    with pytest.raises(ToolError, match="not allowed"):
        ancia.tools.register(lambda: 1, name="has space")
    with pytest.raises(ToolError, match="taken by a built-in tool"):
        ancia.tools.register(lambda: 1, name="system.time")
    with pytest.raises(ToolError, match="must be a function"):
        ancia.tools.register(42, name="answer")


# -- calling -----------------------------------------------------------------------------------------


def test_failures_come_back_as_errors_not_exceptions():
    @ancia.tool
    def explode(x: int) -> int:
        """Always fails."""
        raise ValueError(f"cannot handle {x}")

    registry = get_app().tools
    assert registry.call("explode", {"x": 3}) == (None, "ValueError: cannot handle 3")
    assert registry.call("explode", {}) == (None, "bad arguments: missing required argument(s): x")
    assert registry.call("explode", {"x": "three"})[1].startswith("bad arguments: x must be an integer")
    output, error = registry.call("nope", {})
    assert output is None and error.startswith("unknown tool 'nope'") and "system_time" in error
    with pytest.raises(ToolError, match="explode: ValueError: cannot handle 3"):
        ancia.tools.call("explode", x=3)


def test_a_hanging_tool_times_out_and_the_call_returns(monkeypatch):
    release = threading.Event()

    @ancia.tool
    def hang() -> str:
        """Never answers."""
        release.wait(10)
        return "late"

    ancia.settings.update(tool_timeout=0.3)
    started = time.perf_counter()
    output, error = get_app().tools.call("hang", {})
    elapsed = time.perf_counter() - started
    release.set()
    assert output is None and error == "timed out after 0.3 s (the setting tool_timeout)"
    assert 0.3 <= elapsed < 2


def test_async_tools_run_in_their_own_loop_with_the_same_timeout():
    import asyncio

    @ancia.tool
    async def slow_double(x: int, delay: float = 0.0) -> int:
        """Double x after a delay."""
        await asyncio.sleep(delay)
        return 2 * x

    @ancia.tool
    async def async_fail() -> None:
        """Fails."""
        raise KeyError("missing")

    ancia.settings.update(tool_timeout=0.5)
    registry = get_app().tools
    assert registry.call("slow_double", {"x": 4, "delay": 0.01}) == ("8", None)
    started = time.perf_counter()
    assert registry.call("slow_double", {"x": 4, "delay": 30}) == (
        None, "timed out after 0.5 s (the setting tool_timeout)")
    assert time.perf_counter() - started < 2
    assert registry.call("async_fail", {}) == (None, "KeyError: 'missing'")


def test_results_become_text_and_huge_ones_are_cut():
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque thing>"

    ancia.tools.register(lambda: "x" * 100_000, name="huge")
    ancia.tools.register(lambda: {"a": [1, 2], "color": Color.RED, "p": Point(1, 2)}, name="structured")
    ancia.tools.register(lambda: Opaque(), name="opaque")
    ancia.tools.register(lambda: None, name="nothing")
    huge = ancia.tools.call("huge")
    assert len(huge) < calling.MAX_OUTPUT_CHARS + 200
    assert huge.startswith("x" * 1000) and "truncated: the result has 100000 characters" in huge
    assert ancia.tools.call("structured") == '{"a": [1, 2], "color": "red", "p": {"x": 1, "y": 2}}'
    assert ancia.tools.call("opaque") == '"<opaque thing>"'
    assert ancia.tools.call("nothing") == "null"


def test_confirm_tools_ask_for_approval():
    ran = []

    @ancia.tool(confirm=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return f"deleted {path}"

    registry = get_app().tools
    output, error = registry.call("delete_file", {"path": "a.txt"})
    assert output is None and "needs the user's approval" in error
    assert "approve=" in error and "panel" in error
    seen = []
    assert registry.call("delete_file", {"path": "b.txt"}, approve=lambda e: seen.append(e) or False) == (
        None, "denied by the user")
    assert seen[0].name == "delete_file" and seen[0].arguments == {"path": "b.txt"}
    assert ran == []
    assert registry.call("delete_file", {"path": "c.txt"}, approve=lambda e: True) == ("deleted c.txt", None)
    assert ran == ["c.txt"]
    assert ancia.tools.call("delete_file", path="d.txt", approve=lambda e: True) == "deleted d.txt"


def test_enable_disable_persists_and_gates_schemas_and_calls():
    registry = get_app().tools
    ancia.tools.disable("system.time")
    assert "system_time" not in [s["function"]["name"] for s in registry.schemas(None)]
    assert registry.call("system.time", {}) == (None, "the tool 'system.time' is disabled by the user")
    with pytest.raises(ToolError, match="disabled"):
        registry.schemas(["system.time"])
    close_app()
    assert {t["name"]: t["enabled"] for t in ancia.tools.list()}["system.time"] is False
    ancia.tools.enable("system.time")
    assert "system_time" in [s["function"]["name"] for s in get_app().tools.schemas(None)]
    with pytest.raises(NotFoundError, match="No tool named 'nope'"):
        ancia.tools.disable("nope")
    with pytest.raises(NotFoundError):
        get_app().tools.schemas(["nope"])


def test_system_time_reports_now_with_its_zone():
    before = datetime.now().astimezone().replace(microsecond=0)
    text = ancia.tools.call("system.time")
    stamp = datetime.fromisoformat(text.split(" ")[0])
    assert stamp.tzinfo is not None and abs((stamp - before).total_seconds()) < 5
    tokyo = ancia.tools.call("system.time", timezone="Asia/Tokyo")
    assert datetime.fromisoformat(tokyo.split(" ")[0]).utcoffset().total_seconds() == 9 * 3600
    with pytest.raises(ToolError, match="Unknown time zone 'Mars/Olympus'"):
        ancia.tools.call("system.time", timezone="Mars/Olympus")


def test_set_mood_changes_the_chat_and_refuses_unknown_moods():
    chat = ancia.chats.create("Moody")
    registry = get_app().tools
    result = registry.call("chat.set_mood", {"mood": "playful"}, chat_id=chat.id)
    assert result == ("mood set to playful", None)
    assert chat.info()["mood"] == "playful"
    output, error = registry.call("chat.set_mood", {"mood": "furious"}, chat_id=chat.id)
    assert output is None and "'neutral', 'happy', 'thinking', 'curious', 'surprised', 'sad', 'playful', " \
                              "'focused'" in error
    assert chat.info()["mood"] == "playful"
    assert "no chat" in registry.call("chat.set_mood", {"mood": "happy"})[1]


def test_importing_the_package_and_the_tools_stays_light():
    code = ("import sys, ancia_jupyter as a; a.tool; import ancia_jupyter.tools; "
            "heavy = {'httpx', 'ddgs', 'readability', 'mlx', 'lxml', 'asyncio'} "
            "& {m.split('.')[0] for m in sys.modules}; "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
