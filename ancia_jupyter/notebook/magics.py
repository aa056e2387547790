"""``%ancia`` and ``%%ancia``: ask the local model from a cell, and manage models and chats by name.

A thin view over ``ancia_jupyter.api``. This module parses the line and asks; the subcommands that manage
models, chats, tools and plugins are ``magic_commands``. The only state kept is the kernel's current chat,
so that questions asked one cell after another read as one conversation.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from ..engine.answer import Answer
from .cell_errors import CellErrors
from .code_cells import python_code
from .display import MarkdownStream, TextStream, first_json, show_stream, show_text
from .interpolate import interpolate
from .lazy_api import api
from .magic_commands import COMMANDS, HELP_FOOTER, PLUGIN_ACTIONS, MagicCommands, user_errors
from .magic_line import question_lines, split_options, split_words, unquote
from .notebook_identity import kernel_notebook

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["CODE_SYSTEM", "COMMANDS", "FIX_PROMPT", "FIX_SYSTEM", "FORMATS", "HELP_FOOTER", "NO_CODE", "PLUGIN_ACTIONS",
           "AnciaMagics", "user_errors"]

FORMATS = ("markdown", "code", "text", "json")
FIX_PROMPT = """This notebook cell raised an error.

```python
{code}
```

```text
{error}
```

Explain the cause in two or three sentences, then write the whole corrected cell in one ```python
code block."""
# A small model keeps to a format better when its system prompt asks for it (SmolLM2 135M, 40 code requests:
# the first block, or the whole answer, parsed in 36 answers with it and 29 without); what it writes is read
# with care anyway (code_cells).
CODE_SYSTEM = ("You are Ancia, a helpful assistant inside a Jupyter notebook. Answer with one fenced Python code "
               "block (```python ... ```) and nothing else.")
FIX_SYSTEM = ("You are Ancia, a helpful assistant inside a Jupyter notebook. Explain the cause of the error in at "
              "most three sentences, then write the whole corrected cell in one fenced Python code block "
              "(```python ... ```), and nothing after it.")
NO_CODE = "The answer has no Python code that parses; nothing was inserted. Ask again, or copy what you need."


@magics_class
class AnciaMagics(MagicCommands, Magics):
    """``%ancia QUESTION``, ``%ancia SUBCOMMAND …`` and ``%%ancia [options]``."""

    shell: InteractiveShell  # always the shell that `%load_ext` registered the magics with

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.cells = CellErrors.install(shell)
        if question_lines not in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.append(question_lines)

    @property
    def chat_id(self) -> int | None:
        """The current chat: the notebook's, shared with its panel and sidebar (None: the next question
        starts a new one)."""
        from ..app import get_app

        return get_app().conversations.current_chat(kernel_notebook())

    @chat_id.setter
    def chat_id(self, chat_id: int | None) -> None:
        from ..app import get_app

        get_app().conversations.set_current_chat(kernel_notebook(), chat_id)

    @no_var_expand
    @magic_arguments()
    @argument("--new", action="store_true", help="start a new chat (it becomes the current one)")
    @argument("--chat", metavar="CHAT", help="ask in this chat (id or title) instead of the current one")
    @argument("--model", metavar="MODEL", help="answer with this model")
    @argument("--temperature", type=float, help="sampling temperature for this answer")
    @argument("--top-p", type=float, help="nucleus sampling for this answer")
    @argument("--top-k", type=int, help="top-k sampling for this answer")
    @argument("--max-tokens", type=int, help="the longest answer, in tokens")
    @argument("--system", metavar="TEXT", help="a system prompt for this answer")
    @argument("--context", nargs="+", metavar="NAME", help="describe these variables to the model")
    @argument("--no-tools", action="store_true", help="let the model call no tools")
    @argument("--approve", action="store_true",
              help="let the tools that ask first (network tools, running code) run without asking, this once")
    @argument("--format", choices=FORMATS, default="markdown",
              help="markdown (streamed), code (insert a new cell), text (printed) or json")
    @argument("--no-interpolate", action="store_true",
              help="send {name}, {In[3]}, {Out[3]}, {Err[3]} as written")
    @line_cell_magic
    def ancia(self, line: str, cell: str | None = None) -> None:
        """Ask the local model (the answer streams below), or run a subcommand: ``%ancia help`` lists them.

        ``%ancia QUESTION`` asks in the current chat; ``%%ancia [options]`` asks the cell's text. In both,
        ``{name}`` is a variable's value, ``{In[3]}``/``{Out[3]}``/``{Err[3]}`` an earlier cell's input,
        output or error. Start a line with ``--`` to ask a question that begins with a subcommand's name.
        """
        if cell is not None:
            self._ask(cell, self._parse(line))
            return
        stripped = line.strip()
        if not stripped:
            self._help([])
            return
        if stripped.startswith("-"):
            options, question = split_options(stripped, self.ancia.parser)
            self._ask(question, self._parse(options))
            return
        name, _, rest = stripped.partition(" ")
        words = split_words(rest)
        if name in ("new", "use"):  # the rest of the line is a title
            getattr(self, f"_{name}")(unquote(rest.strip()))
        elif name in COMMANDS and self._is_command(name, words):
            getattr(self, f"_{name}")(words)
        else:
            self._ask(stripped, self._parse(""))

    # -- asking -------------------------------------------------------------------------------------

    def _is_command(self, name: str, words: list[str]) -> bool:
        if len(words) > COMMANDS[name][3]:
            return False
        if name == "fix":
            return not words or words[0].isdigit()
        if name == "help":
            return not words or words[0] in COMMANDS
        return True

    def _parse(self, options: str) -> Any:
        args = parse_argstring(self.ancia, options)
        for key in ("chat", "model", "system"):
            setattr(args, key, unquote(getattr(args, key)))
        if args.new and args.chat:
            raise UsageError("Use either --new or --chat, not both.")
        return args

    def _ask(self, prompt: str, args: Any, *, copies: bool = False) -> MarkdownStream | TextStream:
        prompt = prompt.strip()
        if not args.no_interpolate:
            history = self.shell.history_manager
            assert history is not None  # every InteractiveShell has one
            prompt = interpolate(prompt, self.shell.user_ns, history.input_hist_raw, history.output_hist,
                                 self.cells.errors)
        chat = self._resolve_chat(args.chat) if args.chat else None if args.new else self._current_chat()
        system = "\n\n".join(filter(None, [args.system, CODE_SYSTEM])) if args.format == "code" else args.system
        with user_errors():
            answer = api.chat(prompt, chat=chat, model=args.model, system=system, temperature=args.temperature,
                              top_p=args.top_p, top_k=args.top_k, max_tokens=args.max_tokens,
                              tools=False if args.no_tools else None, approve=_approve_all if args.approve else None,
                              context=args.context, stream=True,
                              copies=copies or args.format == "code")
        assert isinstance(answer, Answer)  # stream=True
        if not args.chat:
            self.chat_id = answer.chat_id
        as_text = args.format == "text" or getattr(self.shell, "kernel", None) is None  # a terminal
        view = show_text(answer) if as_text else show_stream(answer)
        if args.format == "code":
            self._insert(view, python_code(view.text))
        elif args.format == "json" and view.done is not None and view.done.status == "complete":
            try:
                data = first_json(view.text)
            except ValueError as exc:
                print(f"The answer is not valid JSON ({exc}).", file=sys.stderr)
            else:
                text = json.dumps(data, indent=2, ensure_ascii=False)
                display({"application/json": data, "text/plain": text}, raw=True)
        return view

    def _insert(self, view: MarkdownStream | TextStream, code: str | None) -> None:
        """Put code that parses in a new cell below this one; never run it."""
        if view.done is None or view.done.status != "complete":
            print("The answer did not finish: no cell inserted.", file=sys.stderr)
        elif code is None:
            print(NO_CODE, file=sys.stderr)
        else:
            self.shell.set_next_input(code.strip("\n"), replace=False)
            print("Inserted the code in a new cell below.")

    def _current_chat(self) -> int | None:
        return self.chat_id  # None when it was deleted elsewhere: the next question starts a new chat

    def _resolve_chat(self, text: str) -> int:
        if text.isdigit():
            with user_errors():
                return api.Chat(int(text)).id
        for chat in api.chats.list():
            if chat["title"].casefold() == text.casefold():
                return chat["id"]
        raise UsageError(f"No chat with id or title {text!r}; `%ancia chats` lists them.")

    # -- fixing an error --------------------------------------------------------------------------------

    def _fix(self, words: list[str]) -> None:
        number = int(words[0]) if words else self.cells.last()
        if number is None:
            print("No cell has raised an error since %load_ext ancia_jupyter: nothing to fix.")
            return
        if number not in self.cells.errors:
            raise UsageError(f"Cell {number} raised no error.")
        error = self.cells.errors[number]
        prompt = FIX_PROMPT.format(code=self.cells.code[number].strip(), error=error)
        with user_errors():  # a side chat of its own: the talk in the current chat stays out of the fix
            side = api.chats.create(f"Fix: {' '.join(error.split())[:80]}").id
        args = self._parse(f"--no-interpolate --chat {side}")
        args.system = FIX_SYSTEM
        view = self._ask(prompt, args, copies=True)  # the fixed cell copies most of the cell: drafts pay
        self._insert(view, python_code(view.text))


def _approve_all(call: Any) -> bool:
    """``--approve``: the user said yes, in the cell, to every call that asks first."""
    return True
