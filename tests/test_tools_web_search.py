"""``web.search.duckduckgo``: result shaping with the ddgs client stood in for (no internet here)."""

from __future__ import annotations

from typing import ClassVar

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.errors import ToolError


@pytest.fixture(autouse=True)
def trusted():
    """These tests are about what the tool does once it runs: it is trusted, so no call waits for a yes
    (tests/test_tools_privacy.py is about the asking)."""
    ancia.tools.trust("web.search.duckduckgo")



class FakeDDGS:
    """Stands in for ``ddgs.DDGS``: records how it was called and returns what a real search returns."""

    calls: ClassVar[list] = []
    results: ClassVar[list] = []
    error: ClassVar[Exception | None] = None

    def __init__(self, *args, **kwargs):
        FakeDDGS.calls.append(("init", args, kwargs))

    def text(self, query, **kwargs):
        FakeDDGS.calls.append(("text", query, kwargs))
        if FakeDDGS.error is not None:
            raise FakeDDGS.error
        return FakeDDGS.results


@pytest.fixture
def fake_ddgs(monkeypatch):
    import ddgs

    FakeDDGS.calls, FakeDDGS.error = [], None
    FakeDDGS.results = [
        {"title": "MLX:  an array framework", "href": "https://github.com/ml-explore/mlx",
         "body": "MLX is an array framework for machine learning on Apple silicon,\n"
                 " brought to you by Apple."},
        {"title": "MLX duplicate", "href": "https://github.com/ml-explore/mlx", "body": "same URL again"},
        {"title": "mlx-lm on PyPI", "href": "https://pypi.org/project/mlx-lm/", "body": "word " * 200},
        {"title": "", "href": "https://example.org/no-title", "body": ""},
        {"title": "Beyond the limit", "href": "https://example.org/4", "body": "not shown"},
    ]
    monkeypatch.setattr(ddgs, "DDGS", FakeDDGS)
    return FakeDDGS


def test_results_are_shaped_into_numbered_titles_urls_and_snippets(fake_ddgs):
    text = ancia.tools.call("web.search.duckduckgo", query="mlx framework", region="fr-fr", max_results=3)
    entries = text.split("\n")
    assert entries[:5] == [
        "1. MLX: an array framework",
        "   https://github.com/ml-explore/mlx",
        "   MLX is an array framework for machine learning on Apple silicon, brought to you by Apple.",
        "2. mlx-lm on PyPI",
        "   https://pypi.org/project/mlx-lm/",
    ]
    assert entries[5].endswith(" …") and len(entries[5]) < 320
    assert entries[6:] == ["3. https://example.org/no-title", "   https://example.org/no-title"]
    assert "duplicate" not in text and "Beyond the limit" not in text
    assert fake_ddgs.calls[-1] == ("text", "mlx framework", {"region": "fr-fr", "max_results": 3})


def test_defaults_errors_and_empty_results(fake_ddgs):
    from ddgs.exceptions import DDGSException

    ancia.tools.call("web.search.duckduckgo", query="otters")
    assert fake_ddgs.calls[-1] == ("text", "otters", {"region": "wt-wt", "max_results": 5})
    fake_ddgs.results = []
    assert ancia.tools.call("web.search.duckduckgo", query="nothing at all") == "No results."
    with pytest.raises(ToolError, match="max_results must be between 1 and 10"):
        ancia.tools.call("web.search.duckduckgo", query="otters", max_results=50)
    with pytest.raises(ToolError, match="query is empty"):
        ancia.tools.call("web.search.duckduckgo", query="  ")
    fake_ddgs.error = DDGSException("No results found.")
    with pytest.raises(ToolError, match="The search failed: No results found."):
        ancia.tools.call("web.search.duckduckgo", query="otters")


def test_offline_mode_blocks_the_search_before_the_client_is_made(fake_ddgs):
    ancia.settings.update(offline=True)
    with pytest.raises(ToolError, match="blocked: offline mode"):
        ancia.tools.call("web.search.duckduckgo", query="otters")
    assert fake_ddgs.calls == []
    schema = ancia.tools.schema("web.search.duckduckgo")["function"]
    assert schema["name"] == "web_search_duckduckgo"
    assert set(schema["parameters"]["properties"]) == {"query", "region", "max_results"}
