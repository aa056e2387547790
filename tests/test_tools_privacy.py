"""Nothing leaves the machine without a person seeing it: a tool that reaches the network asks before each call
(the approval card in the panel, ``approve=`` in the API) until the user marks it trusted."""

from __future__ import annotations

import pytest
from scripted import says, scripted
from test_tools_web_search import FakeDDGS

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.errors import ToolError

NETWORK = ("web.search.duckduckgo", "web.visit.website")


@pytest.fixture
def searches(monkeypatch):
    import ddgs

    FakeDDGS.calls, FakeDDGS.error, FakeDDGS.results = [], None, [
        {"title": "Otters", "href": "https://example.org/otters", "body": "They hold hands."}]
    monkeypatch.setattr(ddgs, "DDGS", FakeDDGS)
    return FakeDDGS.calls


def test_on_a_fresh_install_the_network_tools_are_on_but_ask_before_each_call():
    rows = {t["name"]: t for t in ancia.tools.list()}
    for name in NETWORK:
        assert rows[name]["enabled"] and rows[name]["needs_approval"] and not rows[name]["trusted"]
    assert not rows["system.time"]["needs_approval"]


def test_a_call_without_a_yes_sends_nothing_and_says_how_to_allow_it(searches):
    with pytest.raises(ToolError, match=r"needs the user's approval.*ancia.tools.trust"):
        ancia.tools.call("web.search.duckduckgo", query="otters")
    with pytest.raises(ToolError, match="denied by the user"):
        ancia.tools.call("web.search.duckduckgo", query="otters", approve=lambda call: False)
    assert searches == []  # nothing went out
    asked = []
    text = ancia.tools.call("web.search.duckduckgo", query="otters", approve=lambda call: asked.append(call) or True)
    assert "Otters" in text and asked[0].name == "web.search.duckduckgo" and asked[0].arguments == {"query": "otters"}


def test_a_trusted_tool_runs_without_asking_until_it_is_untrusted(searches):
    ancia.tools.trust("web.search.duckduckgo")
    assert "Otters" in ancia.tools.call("web.search.duckduckgo", query="otters")
    row = next(t for t in ancia.tools.list() if t["name"] == "web.search.duckduckgo")
    assert row["trusted"] and not row["needs_approval"]
    assert ancia.settings.get()["trusted_tools"] == ["web.search.duckduckgo"]  # remembered
    ancia.tools.untrust("web.search.duckduckgo")
    with pytest.raises(ToolError, match="approval"):
        ancia.tools.call("web.search.duckduckgo", query="otters")


def test_only_a_network_tool_can_be_trusted():
    with pytest.raises(ToolError, match="does not reach the network"):
        ancia.tools.trust("system.time")
    assert ancia.settings.get()["trusted_tools"] == []


def test_a_model_calling_a_network_tool_waits_for_the_askers_yes(tiny, searches):
    ancia.models.load()
    call = '<tool_call>{"name": "web_search_duckduckgo", "arguments": {"query": "otters"}}</tool_call>'
    with scripted(says(call, "No search then.")):
        events = list(ancia.chat("Search otters", stream=True, tools=["web.search.duckduckgo"], max_tokens=80))
    result = next(e for e in events if isinstance(e, ev.ToolResult))
    assert result.output is None and "approval" in result.error and searches == []
    with scripted(says(call, "Found them.")):
        events = list(ancia.chat("Search otters", stream=True, tools=["web.search.duckduckgo"], max_tokens=80,
                                 approve=lambda call: True))
    result = next(e for e in events if isinstance(e, ev.ToolResult))
    assert result.error is None and "Otters" in result.output


def test_a_cell_magic_says_yes_with_approve_and_no_without(tiny, searches):
    from IPython.core.interactiveshell import InteractiveShell

    ancia.models.load()
    for tool in ancia.tools.list():  # the tiny model's window holds one tool's description, not all
        if tool["name"] != "web.search.duckduckgo":
            ancia.tools.disable(tool["name"])
    shell = InteractiveShell.instance()
    call = '<tool_call>{"name": "web_search_duckduckgo", "arguments": {"query": "otters"}}</tool_call>'
    try:
        shell.extension_manager.load_extension("ancia_jupyter")
        with scripted(says(call, "No.")):
            shell.run_cell_magic("ancia", "--new --max-tokens 80", "Search otters")
        assert searches == []
        with scripted(says(call, "Found.")):
            shell.run_cell_magic("ancia", "--new --approve --max-tokens 80", "Search otters")
        assert [c[1] for c in searches if c[0] == "text"] == ["otters"]
    finally:
        shell.extension_manager.unload_extension("ancia_jupyter")
        InteractiveShell.clear_instance()
