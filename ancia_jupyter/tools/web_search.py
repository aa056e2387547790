"""``web.search.duckduckgo``: search the web through the ``ddgs`` metasearch client.

Results are shaped into short numbered text (title, URL, snippet): small enough for a little model's
context window, and easy for it to cite. ``ddgs`` is imported only when a search runs.
"""

from __future__ import annotations

from typing import Any

from ..errors import ToolError

MAX_RESULTS = 10
SNIPPET_CHARS = 300


def shape_results(results: list[dict[str, Any]], limit: int) -> str:
    """Numbered ``title / URL / snippet`` entries, duplicates by URL dropped, whitespace tidied."""
    lines: list[str] = []
    seen: set[str] = set()
    for item in results:
        url = str(item.get("href") or item.get("url") or item.get("link") or "").strip()
        if not url or url in seen:
            continue
        seen.add(url)
        title = " ".join(str(item.get("title") or url).split())
        snippet = " ".join(str(item.get("body") or item.get("snippet") or "").split())
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
        lines.append(f"{len(seen)}. {title}\n   {url}" + (f"\n   {snippet}" if snippet else ""))
        if len(seen) >= limit:
            break
    return "\n".join(lines) if lines else "No results."


def web_search(query: str, region: str = "wt-wt", max_results: int = 5) -> str:
    """Search the web with DuckDuckGo; returns titles, URLs and snippets of the top results.

    Args:
        query: What to search for.
        region: A region code such as "us-en", "fr-fr" or "wt-wt" (no region).
        max_results: How many results to return, 1 to 10.
    """
    if not query.strip():
        raise ToolError("The search query is empty.")
    if not 1 <= max_results <= MAX_RESULTS:
        raise ToolError(f"max_results must be between 1 and {MAX_RESULTS} (got {max_results}).")
    from ddgs import DDGS
    from ddgs.exceptions import DDGSException

    try:
        results = DDGS(timeout=10).text(query, region=region, max_results=max_results)
    except DDGSException as exc:
        raise ToolError(f"The search failed: {exc}") from None
    return shape_results(results or [], max_results)


def register(registry: Any) -> None:
    registry.register(web_search, name="web.search.duckduckgo", network=True)
