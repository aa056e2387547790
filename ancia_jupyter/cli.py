"""The ``ancia`` command: fetch and delete models before going offline, chat from a terminal, read, search and
export chats, and manage plugins. Each action is one API call; an error is one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from .errors import AnciaError
from .model_manager.progress import Progress, TqdmBar, watching


def _table(rows: list[dict], columns: Sequence[str]) -> str:
    widths = {c: max([len(c), *(len(str(r.get(c, ""))) for r in rows)]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def _models(args: argparse.Namespace) -> None:
    from .api import models

    if args.action == "list":
        rows = [{**m, "fits": "yes" if m["fits"] else "no", "vision": "yes" if m["vision"] else "",
                 "selected": "*" if m["selected"] else ""} for m in models.list()]
        print(_table(rows, ("selected", "id", "status", "runtime", "size_mb", "memory_mb", "fits", "vision", "title")))
    elif args.action == "pull":
        print(f"{args.id}: {models.pull(args.id, progress=_terminal_bar())}")
    elif args.action == "rm":
        from .api_models import size_text

        size = models.cache_size(args.id)  # before: afterwards there is nothing left to measure
        print(f"{args.id}: deleted, freed {size_text(size)}" if models.delete_cache(args.id)
              else f"{args.id}: nothing to delete")
    elif args.action == "info":
        print(json.dumps(models.info(args.id), indent=2))
    elif args.action == "select":
        print(f"selected {models.select(args.id)}")


def _terminal_bar() -> Progress:
    """A download as tqdm's text bar on stderr: size done of the total, speed and time left."""
    import tqdm  # type: ignore[import-untyped]  # tqdm ships no type information

    return TqdmBar(tqdm.tqdm, file=sys.stderr)


def _chat(args: argparse.Namespace) -> None:
    from .api import chat
    from .engine.answer import Answer
    from .rendering import show_text

    with watching(_terminal_bar()):  # a model used for the first time is downloaded first: show it
        answer = chat(args.prompt, chat=args.chat, model=args.model, stream=True)
        assert isinstance(answer, Answer)
        done = show_text(answer).done
    if done is not None:
        print(f"[chat {done.chat_id} · {done.status} · {done.usage.get('completion_tokens', 0)} tokens]",
              file=sys.stderr)


def _chats(args: argparse.Namespace) -> None:
    from .api import chats

    if args.action == "list":
        print(_table(chats.list(), ("id", "title", "message_count", "model_id")))
    elif args.action == "show":
        print(chats.export(args.id, "md"))
    elif args.action == "export":
        print(chats.export(args.id, args.format))
    elif args.action == "search":
        hits = chats.search(" ".join(args.query), args.limit)
        if not hits:
            print(f"No message matches {' '.join(args.query)!r}.")
        else:
            print(_table(hits, ("chat_id", "chat_title", "role", "message_id", "snippet")))


def _plugins(args: argparse.Namespace) -> None:
    from .api_plugins import plugins

    if args.action in (None, "list"):
        rows = [{**p, "enabled": "yes" if p["enabled"] else "no", "tools": ", ".join(p["tools"]),
                 "error": p["error"] or ""} for p in plugins.list()]
        print(_table(rows, ("id", "version", "enabled", "tools", "error")) if rows else
              "No plugins installed; `ancia plugins registry` lists what can be installed.")
    elif args.action == "registry":
        print(f"registry: {plugins.registry_location()}")
        print(_table([{**e, "installed": e["installed"] or ""} for e in plugins.registry()],
                     ("id", "version", "installed", "description")))
    elif args.action == "update":
        changed = plugins.update(args.id)
        print("\n".join(f"updated {c['id']} {c['from']} -> {c['to']}" for c in changed)
              or "every plugin is up to date")
    elif args.action == "uninstall":
        plugins.uninstall(args.id)
        print(f"uninstalled {args.id}")
    else:
        info = getattr(plugins, args.action)(args.id)
        done = {"install": "installed", "enable": "enabled", "disable": "disabled"}[args.action]
        print(f"{done} {info['id']} {info['version']}; tools: {', '.join(info['tools']) or 'none'}")


class _Parser(argparse.ArgumentParser):
    """A mistake on the command line is one line, like every other error, with where to read more."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"ancia: {message} (`{self.prog} --help` shows how)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ancia", description="A local LLM assistant for Jupyter, from the terminal.")
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("models", help="list, fetch, inspect and delete models")
    m_sub = m.add_subparsers(dest="action", required=True)
    m_sub.add_parser("list", help="the catalog with status, runtime, size and memory fit")
    for action, text in (("pull", "fetch (and convert) a model"), ("rm", "delete a model's cached files"),
                         ("info", "everything known about a model"), ("select", "make it the default")):
        m_sub.add_parser(action, help=text).add_argument("id")
    m.set_defaults(func=_models)

    c = sub.add_parser("chat", help="ask a question; the answer streams to the terminal")
    c.add_argument("prompt")
    c.add_argument("--chat", type=int, help="continue this chat (id)")
    c.add_argument("--model", help="model id")
    c.set_defaults(func=_chat)

    h = sub.add_parser("chats", help="list, show and export chats")
    h_sub = h.add_subparsers(dest="action", required=True)
    h_sub.add_parser("list")
    h_sub.add_parser("show").add_argument("id", type=int)
    e = h_sub.add_parser("export")
    e.add_argument("id", type=int)
    e.add_argument("--format", choices=("md", "json"), default="md")
    s = h_sub.add_parser("search", help="full-text search of every chat's messages")
    s.add_argument("query", nargs="+")
    s.add_argument("--limit", type=int, default=20, help="the most hits (1 to 1000)")
    h.set_defaults(func=_chats)

    g = sub.add_parser("plugins", help="installed plugins, the registry, and managing them")
    g_sub = g.add_subparsers(dest="action")
    g_sub.add_parser("list", help="installed plugins with their tools (the default)")
    g_sub.add_parser("registry", help="what the registry offers")
    for action, text in (("install", "install a plugin from the registry"), ("enable", "turn a plugin on"),
                         ("disable", "turn a plugin off"), ("uninstall", "remove a plugin")):
        g_sub.add_parser(action, help=text).add_argument("id")
    g_sub.add_parser("update", help="install the registry's version where it differs").add_argument("id", nargs="?")
    g.set_defaults(func=_plugins)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except AnciaError as exc:
        print(f"ancia: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        from .app import close_app

        close_app()
    return 0


if __name__ == "__main__":
    sys.exit(main())
