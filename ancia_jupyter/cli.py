"""The ``ancia`` command: fetch models before going offline, chat from a terminal, read and export chats."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import AnciaError


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
        print(f"{args.id}: {models.pull(args.id)}")
    elif args.action == "rm":
        print(f"{args.id}: {'deleted' if models.delete_cache(args.id) else 'nothing to delete'}")
    elif args.action == "info":
        print(json.dumps(models.info(args.id), indent=2))
    elif args.action == "select":
        print(f"selected {models.select(args.id)}")


def _chat(args: argparse.Namespace) -> None:
    from .api import chat
    from .engine.answer import Answer
    from .rendering import show_text

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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ancia", description="A local LLM assistant for Jupyter, from the terminal.")
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
    h.set_defaults(func=_chats)
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
