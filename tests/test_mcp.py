"""Tools from MCP servers, against real servers written with the official SDK (tests/mcp_servers/adder.py),
over stdio and over streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from scripted import says, scripted

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.app import close_app, get_app
from ancia_jupyter.errors import InvalidValueError, NotFoundError, StoreError, ToolError

ADDER = Path(__file__).parent / "mcp_servers" / "adder.py"
COMMAND = [sys.executable, str(ADDER)]
YES = {"approve": lambda call: True}


def mcp_children() -> list[psutil.Process]:
    """This process's MCP servers: children marked by the manager."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "ANCIA_MCP_SERVER" in child.environ():
                found.append(child)
        except psutil.Error:
            pass
    return found


def server(name: str = "adder") -> dict:
    return next(s for s in ancia.mcp.list() if s["name"] == name)


def call_error(name: str, **arguments) -> str:
    with pytest.raises(ToolError) as caught:
        ancia.tools.call(name, arguments, **YES)
    return str(caught.value)


def start_http_adder() -> tuple[subprocess.Popen, str]:
    """The same adder, serving streamable HTTP on a free port of 127.0.0.1: its process and its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([*COMMAND, "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "the HTTP server did not start"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def http_url():
    process, url = start_http_adder()
    try:
        yield url
    finally:
        process.kill()
        process.wait(10)


# -- listing and calling -------------------------------------------------------------------------------------


def test_a_servers_tools_appear_as_mcp_tools_with_their_own_schemas():
    added = ancia.mcp.add("adder", COMMAND)
    assert (added["state"], added["tools"], mcp_children()) == ("not started", [], [])  # lazy: nothing runs
    listed = ancia.mcp.list(refresh=True)
    assert [(s["name"], s["kind"], s["state"], s["error"], s["trusted"]) for s in listed] == [
        ("adder", "stdio", "running", None, False)]
    assert listed[0]["tools"] == ["mcp.adder.add", "mcp.adder.fail", "mcp.adder.sleep", "mcp.adder.getenv"]
    rows = {t["name"]: t for t in ancia.tools.list() if t["source"] == "mcp:adder"}
    assert sorted(rows) == ["mcp.adder.add", "mcp.adder.fail", "mcp.adder.getenv", "mcp.adder.sleep"]
    assert rows["mcp.adder.add"]["confirm"] and rows["mcp.adder.add"]["description"] == "Add two integers."
    schema = ancia.tools.schema("mcp.adder.add")["function"]
    assert schema["name"] == "mcp_adder_add"  # the safe alias the model sees
    assert schema["parameters"]["properties"] == {"a": {"title": "A", "type": "integer"},
                                                  "b": {"title": "B", "type": "integer"}}
    assert schema["parameters"]["required"] == ["a", "b"]
    print(f"\nstdio server start: {listed[0]['start_s']} s")


def test_a_call_runs_on_the_server_once_approved_and_a_trusted_server_asks_no_more():
    ancia.mcp.add("adder", COMMAND)
    ancia.mcp.list(refresh=True)  # a server's tools are known once it has run
    asked = []
    assert ancia.tools.call("mcp.adder.add", a=2, b=3, approve=lambda c: asked.append(c) or True) == "5"
    assert [(c.name, c.arguments) for c in asked] == [("mcp.adder.add", {"a": 2, "b": 3})]
    started = time.perf_counter()
    assert ancia.tools.call("mcp.adder.add", a=-2, b=3, **YES) == "1"
    print(f"\ncall round trip {time.perf_counter() - started:.3f} s")

    with pytest.raises(ToolError, match="needs the user's approval"):
        ancia.tools.call("mcp.adder.add", a=1, b=1)
    with pytest.raises(ToolError, match="denied by the user"):
        ancia.tools.call("mcp.adder.add", a=1, b=1, approve=lambda c: False)
    assert ancia.mcp.trust("adder")["trusted"] is True
    assert ancia.tools.call("mcp.adder.add", a=1, b=1) == "2"
    assert next(t for t in ancia.tools.list() if t["name"] == "mcp.adder.add")["confirm"] is False
    ancia.mcp.untrust("adder")
    with pytest.raises(ToolError, match="needs the user's approval"):
        ancia.tools.call("mcp.adder.add", a=1, b=1)


def test_errors_from_the_tool_and_bad_arguments_are_tool_errors():
    ancia.mcp.add("adder", COMMAND)
    ancia.mcp.list(refresh=True)
    assert call_error("mcp.adder.fail", message="the disk is full") == (
        "mcp.adder.fail: Error executing tool fail: the disk is full")
    assert call_error("mcp.adder.add", a="two", b=3) == "mcp.adder.add: bad arguments: a must be an integer, not str 'two'"
    assert call_error("mcp.adder.add", a=2) == "mcp.adder.add: bad arguments: missing required argument(s): b"
    assert server()["state"] == "running"  # an error is not a failure of the server
    assert ancia.tools.call("mcp.adder.add", a=2, b=2, **YES) == "4"


def test_the_model_calls_an_mcp_tool_through_the_tool_loop(tiny):
    ancia.models.load()
    ancia.mcp.add("adder", COMMAND)
    assert server()["state"] == "not started"
    call = '<tool_call>{"name": "mcp_adder_add", "arguments": {"a": 2, "b": 3}}</tool_call>'
    with scripted(says(call, "Done.")):
        events = list(ancia.chat("What is 2 + 3?", stream=True, tools=["mcp.adder.add"], max_tokens=80,
                                 approve=lambda c: True))
    calls = [e for e in events if isinstance(e, ev.ToolCall)]
    results = [e for e in events if isinstance(e, ev.ToolResult)]
    assert [(c.name, c.arguments) for c in calls] == [("mcp.adder.add", {"a": 2, "b": 3})]
    assert [(r.output, r.error) for r in results] == [("5", None)]
    assert events[-1].type == "done" and server()["state"] == "running"  # started when the chat needed it
    with scripted(says(call, "Done.")):
        refused = ancia.chat("What is 2 + 3?", tools=["mcp.adder.add"], max_tokens=80)
    assert "needs the user's approval" in refused.tool_calls[0]["error"]


def test_an_answer_that_offers_every_tool_starts_the_servers_first():
    ancia.mcp.add("adder", COMMAND)
    ancia.mcp.add("second", COMMAND)
    names = [s["function"]["name"] for s in get_app().engine.tools.schemas(None)]
    assert {"mcp_adder_add", "mcp_second_add"} <= set(names)
    assert [s["state"] for s in ancia.mcp.list()] == ["running", "running"]


# -- failures ------------------------------------------------------------------------------------------------


def test_a_server_killed_mid_call_fails_the_call_in_time_and_is_marked_failed():
    ancia.settings.update(tool_timeout=20)
    ancia.mcp.add("adder", COMMAND)
    ancia.mcp.add("other", COMMAND)
    ancia.mcp.list(refresh=True)
    pid = server()["pid"]
    outcome = {}

    def slow_call():
        started = time.monotonic()
        try:
            outcome["output"] = ancia.tools.call("mcp.adder.sleep", seconds=30, **YES)
        except ToolError as exc:
            outcome["error"] = str(exc)
        outcome["took"] = time.monotonic() - started

    caller = threading.Thread(target=slow_call)
    caller.start()
    time.sleep(1.5)
    os.kill(pid, signal.SIGKILL)
    caller.join(25)
    assert outcome["error"] == "mcp.adder.sleep: the MCP server 'adder' failed: it stopped during the call: its process ended"
    assert outcome["took"] < 20 - 1.5
    assert (server()["state"], server()["error"]) == ("failed", "its process ended")
    assert call_error("mcp.adder.add", a=1, b=2) == (
        "mcp.adder.add: the MCP server 'adder' failed: its process ended; `ancia.mcp.list(refresh=True)` starts it "
        "again")
    assert ancia.tools.call("mcp.other.add", a=1, b=2, **YES) == "3"  # the rest keeps working
    assert server()["state"] == "failed"
    assert [s["state"] for s in ancia.mcp.list(refresh=True)] == ["running", "running"]
    assert ancia.tools.call("mcp.adder.add", a=1, b=2, **YES) == "3"


def test_a_server_killed_while_idle_is_noticed_without_a_call():
    ancia.mcp.add("adder", COMMAND)
    os.kill(ancia.mcp.list(refresh=True)[0]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server()["state"] != "failed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (server()["state"], server()["error"]) == ("failed", "its process ended")


def test_a_server_that_hangs_gives_up_the_call_by_the_timeout_and_is_stopped():
    ancia.settings.update(tool_timeout=3)
    ancia.mcp.add("adder", COMMAND)
    pid = ancia.mcp.list(refresh=True)[0]["pid"]
    error = call_error("mcp.adder.sleep", seconds=10)  # slow, but the server still answers a ping
    assert error == ("mcp.adder.sleep: the MCP server 'adder': the tool 'sleep' did not finish within 3 s (the "
                     "setting tool_timeout); the server still answers")
    assert server()["state"] == "running"
    os.kill(pid, signal.SIGSTOP)  # now it answers nothing at all
    started = time.monotonic()
    error = call_error("mcp.adder.add", a=1, b=2)
    assert time.monotonic() - started < 3.3
    assert error == "mcp.adder.add: the MCP server 'adder' failed: it stopped answering: no reply within 3 s, nor to a ping"
    assert server()["state"] == "failed"
    gone, alive = psutil.wait_procs([psutil.Process(pid)], timeout=15)  # stopped in the background
    assert alive == []


def test_a_command_that_does_not_exist_fails_with_one_line_and_the_others_work():
    ancia.mcp.add("nope", ["ancia-no-such-mcp-server", "--stdio"])
    ancia.mcp.add("adder", COMMAND)
    listed = {s["name"]: s for s in ancia.mcp.list(refresh=True)}
    assert (listed["nope"]["state"], listed["nope"]["error"]) == (
        "failed", "the command 'ancia-no-such-mcp-server' was not found: is it installed and on the kernel's PATH?")
    assert listed["adder"]["state"] == "running"
    ancia.mcp.add("crash", [sys.executable, "-c", "import sys; sys.exit('no config file found')"])
    crash = next(s for s in ancia.mcp.list(refresh=True) if s["name"] == "crash")
    assert crash["state"] == "failed" and crash["error"].endswith("(it wrote: no config file found)")
    assert "\n" not in crash["error"]


def test_a_server_that_never_answers_fails_at_the_start_timeout_and_close_does_not_wait_for_it():
    silent = [sys.executable, "-c", "import time; time.sleep(120)"]
    get_app().mcp.running.start_timeout = 2
    ancia.mcp.add("silent", silent)
    started = time.monotonic()
    listed = ancia.mcp.list(refresh=True)
    assert time.monotonic() - started < 5
    assert (listed[0]["state"], listed[0]["error"]) == ("failed", "it did not answer within 2 s of starting")
    psutil.wait_procs(mcp_children(), timeout=15)
    assert mcp_children() == []  # stopped: its input closed, then SIGTERM

    get_app().mcp.running.start_timeout = 60
    outcome: list[BaseException | list] = []

    def list_servers() -> None:
        try:
            outcome.append(ancia.mcp.list(refresh=True))
        except StoreError as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=list_servers)
    waiter.start()
    deadline = time.monotonic() + 20
    while not mcp_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    close_app()
    waiter.join(10)
    assert not waiter.is_alive() and time.monotonic() - started < 10
    assert mcp_children() == []
    if isinstance(outcome[0], StoreError):  # the list read the store after close: it says so, and how to go on
        assert "ancia was closed" in str(outcome[0]) and "run it again" in str(outcome[0])


def test_a_missing_environment_variable_fails_the_server_and_names_it(monkeypatch):
    monkeypatch.delenv("ANCIA_TEST_UNSET", raising=False)
    ancia.mcp.add("adder", COMMAND, env={"TOKEN": "$ANCIA_TEST_UNSET"})
    assert ancia.mcp.list(refresh=True)[0]["error"] == (
        "the environment variable ANCIA_TEST_UNSET (env TOKEN) is not set in the kernel's environment")


# -- streamable HTTP, offline mode ------------------------------------------------------------------------


def test_an_http_servers_tools_work_like_a_stdio_servers(http_url):
    ancia.mcp.add("web", url=http_url)
    listed = ancia.mcp.list(refresh=True)
    assert (listed[0]["kind"], listed[0]["state"], listed[0]["url"]) == ("http", "running", http_url)
    assert ancia.tools.call("mcp.web.add", a=20, b=22, **YES) == "42"
    assert call_error("mcp.web.fail", message="nope") == "mcp.web.fail: Error executing tool fail: nope"
    row = next(t for t in ancia.tools.list() if t["name"] == "mcp.web.add")
    assert (row["source"], row["network"]) == ("mcp:web", False)  # on this machine: not the network
    started = time.perf_counter()
    ancia.tools.call("mcp.web.add", a=1, b=1, **YES)
    print(f"\nHTTP server start {listed[0]['start_s']} s, call {time.perf_counter() - started:.3f} s")


def test_an_http_server_that_dies_mid_call_or_is_not_there_fails_with_one_line(http_url):
    ancia.settings.update(tool_timeout=20)
    process, url = start_http_adder()
    try:
        ancia.mcp.add("web", url=url)
        ancia.mcp.add("wrong", url=http_url.replace("/mcp", "/nope"))
        ancia.mcp.add("closed", url="http://127.0.0.1:9/mcp")
        listed = {s["name"]: s for s in ancia.mcp.list(refresh=True)}
        assert listed["web"]["state"] == "running"
        assert (listed["wrong"]["state"], listed["wrong"]["error"]) == (
            "failed", f"{http_url.replace('/mcp', '/nope')} answered: Not Found")
        assert (listed["closed"]["state"], listed["closed"]["error"]) == (
            "failed", "cannot reach http://127.0.0.1:9/mcp: ConnectError: All connection attempts failed")
        threading.Timer(1.5, process.kill).start()
        started = time.monotonic()
        error = call_error("mcp.web.sleep", seconds=30)
        assert time.monotonic() - started < 10
        assert error.startswith("mcp.web.sleep: the MCP server 'web' failed: it stopped answering (")  # then how
        assert "\n" not in error
        assert server("web")["state"] == "failed"
    finally:
        process.kill()
        process.wait(10)


def test_offline_mode_blocks_a_server_that_is_not_on_this_machine(http_url):
    ancia.settings.update(offline=True)
    ancia.mcp.add("remote", url="https://mcp.example.com/mcp")
    ancia.mcp.add("local", url=http_url)
    listed = {s["name"]: s for s in ancia.mcp.list(refresh=True)}
    assert listed["remote"]["state"] == "blocked"
    assert listed["remote"]["error"] == ("offline mode: https://mcp.example.com/mcp is not on this machine. Turn it "
                                         "off with `ancia.settings.update(offline=False)`, then "
                                         "`ancia.mcp.list(refresh=True)`.")
    assert listed["local"]["state"] == "running"  # the control: loopback is allowed offline
    get_app().store.update_mcp_server("remote", tools=[{"name": "add", "description": "", "input_schema": {}}])
    close_app()
    assert call_error("mcp.remote.add") == "mcp.remote.add: blocked: offline mode"
    assert server("remote")["state"] == "not started"


# -- kept per user -------------------------------------------------------------------------------------------


def test_servers_are_kept_across_app_restarts_and_their_tools_show_before_they_start():
    ancia.mcp.add("adder", COMMAND)
    ancia.mcp.trust("adder")
    ancia.mcp.list(refresh=True)
    close_app()
    assert mcp_children() == []
    again = ancia.mcp.list()[0]
    assert (again["state"], again["trusted"], again["command"]) == ("not started", True, COMMAND)
    assert "mcp.adder.add" in [t["name"] for t in ancia.tools.list()] and mcp_children() == []
    started = time.perf_counter()
    assert ancia.tools.call("mcp.adder.add", a=3, b=4) == "7"  # trusted: no approval; started by the call
    print(f"\nfirst call after a restart, the server's start included: {time.perf_counter() - started:.2f} s")
    assert server()["state"] == "running"


def test_disable_enable_and_remove():
    ancia.mcp.add("adder", COMMAND)
    ancia.mcp.list(refresh=True)
    off = ancia.mcp.disable("adder")
    assert (off["enabled"], off["state"], mcp_children()) == (False, "not started", [])
    assert not [t for t in ancia.tools.list() if t["source"] == "mcp:adder"]
    assert ancia.mcp.enable("adder")["enabled"] is True
    assert ancia.tools.call("mcp.adder.add", a=1, b=1, **YES) == "2"
    ancia.mcp.remove("adder")
    assert ancia.mcp.list() == [] and mcp_children() == []
    assert not [t for t in ancia.tools.list() if t["source"] == "mcp:adder"]


def test_secrets_are_references_and_their_values_are_never_stored(monkeypatch, ancia_home):
    secret = "s3cret-value-0f-the-kernel"
    monkeypatch.setenv("ANCIA_TEST_SECRET", secret)
    ancia.mcp.add("adder", COMMAND, env={"ADDER_TOKEN": "$ANCIA_TEST_SECRET"})
    ancia.mcp.list(refresh=True)
    assert ancia.tools.call("mcp.adder.getenv", name="ADDER_TOKEN", **YES) == secret  # the server got it
    assert ancia.tools.call("mcp.adder.getenv", name="ANCIA_TEST_SECRET", **YES) == "(unset)"  # only what is named
    for bad in ({"env": {"ADDER_TOKEN": secret}}, {"command": [*COMMAND, "--api-key", "abc123"]},
                {"command": [*COMMAND, "--token=abc123"]}, {"command": [*COMMAND, "ghp_0123456789abcdefABCDEF"]}):
        with pytest.raises(InvalidValueError, match="never stored") as caught:
            ancia.mcp.add("leaky", **{"command": COMMAND, **bad})
        assert "\n" not in str(caught.value) and secret not in str(caught.value)
    with pytest.raises(InvalidValueError, match="never stored"):
        ancia.mcp.add("leaky", url="http://127.0.0.1:9/mcp", headers={"Authorization": f"Bearer {secret}"})
    with pytest.raises(InvalidValueError, match="user name or password"):
        ancia.mcp.add("leaky", url=f"https://me:{secret}@example.com/mcp")
    assert [s["name"] for s in ancia.mcp.list()] == ["adder"]
    close_app()
    raw = b"".join(p.read_bytes() for p in ancia_home.glob("ancia.db*"))
    assert b"$ANCIA_TEST_SECRET" in raw and secret.encode() not in raw


def test_bad_input_is_one_line_and_changes_nothing():
    cases = [(dict(name="bad name", command=COMMAND), "MCP server name 'bad name' is not allowed"),
             (dict(name="x" * 41, command=COMMAND), "is not allowed"),
             (dict(name="a", command=COMMAND, url="http://127.0.0.1:1/mcp"), "either command"),
             (dict(name="a"), "either command"),
             (dict(name="a", command=[]), "non-empty list"),
             (dict(name="a", url="ftp://host/x"), "is not an MCP server URL"),
             (dict(name="a", command=COMMAND, env=["TOKEN"]), "env must be a dict")]
    for kwargs, message in cases:
        with pytest.raises(InvalidValueError, match=message) as caught:
            ancia.mcp.add(**kwargs)
        assert "\n" not in str(caught.value)
    with pytest.raises(NotFoundError, match="No MCP server named 'ghost'. Servers: none"):
        ancia.mcp.enable("ghost")
    assert ancia.mcp.list() == []


def test_the_same_definition_again_changes_nothing_and_another_replaces_it():
    ancia.mcp.add("adder", COMMAND)
    ancia.mcp.trust("adder")
    pid = ancia.mcp.list(refresh=True)[0]["pid"]
    assert pid is not None
    assert ancia.mcp.add("adder", COMMAND)["trusted"] is True and server()["pid"] == pid  # a cell run again
    replaced = ancia.mcp.add("adder", [*COMMAND])  # the same list: still the same
    assert replaced["pid"] == pid
    replaced = ancia.mcp.add("adder", [sys.executable, "-u", str(ADDER)])
    assert (replaced["trusted"], replaced["state"]) == (False, "not started")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# -- the kernel's lifetime -----------------------------------------------------------------------------------


def test_no_server_process_outlives_close_app(http_url):
    ancia.mcp.add("adder", COMMAND)
    ancia.mcp.add("second", COMMAND)
    ancia.mcp.add("web", url=http_url)
    assert [s["state"] for s in ancia.mcp.list(refresh=True)] == ["running"] * 3
    assert len(mcp_children()) == 2
    started = time.perf_counter()
    close_app()
    print(f"\nclose_app with 3 servers: {time.perf_counter() - started:.2f} s")
    assert mcp_children() == []


def test_importing_ancia_and_listing_servers_does_not_import_the_sdk(ancia_home):
    code = ("import sys, json, ancia_jupyter as ancia\n"
            "before = 'mcp' in sys.modules\n"
            "ancia.mcp.list(); ancia.tools.list()\n"
            "print(json.dumps([before, 'mcp' in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ANCIA_DATA_DIR": str(ancia_home)})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, False], out.stderr


# -- %ancia mcp ----------------------------------------------------------------------------------------------


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("ancia_jupyter")
    try:
        yield shell
    finally:
        shell.extension_manager.unload_extension("ancia_jupyter")
        InteractiveShell.clear_instance()


def test_the_mcp_magic_adds_lists_and_manages_servers(shell, capsys):
    from IPython.core.error import UsageError

    def line(text: str) -> str:
        shell.run_line_magic("ancia", text)
        return capsys.readouterr().out

    assert line("mcp").startswith("No MCP servers yet")
    assert line(f"mcp add adder {sys.executable} {ADDER}").startswith("Added adder:")
    assert server()["command"] == COMMAND
    table = line("mcp refresh").splitlines()
    assert table[0] == "| on | server | kind | command or URL | trusted | state | tools |"
    assert table[2] == (f"| ✓ | adder | stdio | {sys.executable} {ADDER} |  | running | mcp.adder.add, mcp.adder.fail, "
                        "mcp.adder.sleep, mcp.adder.getenv |")
    assert line("mcp trust adder") == "Trusted adder: its tools run without asking for approval.\n"
    assert ancia.tools.call("mcp.adder.add", a=1, b=2) == "3"
    assert line("mcp disable adder").startswith("Disabled adder")
    assert line("mcp add web http://127.0.0.1:9/mcp").startswith("Added web:")
    assert server("web")["url"] == "http://127.0.0.1:9/mcp"
    for bad, message in [("mcp remove ghost", "No MCP server named 'ghost'"), ("mcp trust", "Name the server"),
                         ("mcp add lonely", "Write %ancia mcp add NAME"),
                         ("mcp add x --token abc123", "never stored")]:
        with pytest.raises(UsageError, match=message):
            line(bad)
    assert line("mcp remove adder") == "Removed adder.\n"
    assert [s["name"] for s in ancia.mcp.list()] == ["web"]
