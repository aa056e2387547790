"""The Python code of an answer, for a new cell: code that parses, or nothing.

A small model follows no format reliably: it opens a block and never closes it, closes one it never opened,
writes prose before and after its code, shows the output in a second block, or answers with a shell command.
``python_code`` finds the code among all that, by these rules:

- The answer is read as fenced blocks (a line starting with three backticks; a fence written at the end of a
  line of code or prose counts as if it were on its own line; a line of only backticks is a bare fence).
- A bare first fence with code before it closes a block the model never opened: that code comes first.
- An unclosed block runs to the end of the answer. An answer without any fence is one block.
- Only blocks labelled ``python`` (``python3``, ``py``, ``ipython``, ``pycon``) or not labelled are read;
  ``bash``, ``json``, ``text`` and the rest are never Python.
- In a block, leading lines that cannot start code (prose, "Here is the code:") are left out, and so is
  everything from the first line that does not parse (an explanation, "Output:", a line cut off at the token
  limit); a ``>>>`` session keeps only its input lines.
- What remains must parse with ``ast.parse``, compile as a cell (no ``return`` outside a function; ``await``
  is allowed, as in IPython) and do something: a bare name, a number or a list alone (``Sure``, ``42``,
  printed output) is not code, and neither are the imports alone of code that breaks off after them.
- The first block that yields code wins. Blocks are never joined: a second block is as often the output,
  or another version of the same code, as its continuation.
"""

from __future__ import annotations

import ast
import codeop
import re
import textwrap
import warnings

__all__ = ["python_code"]

PYTHON_LABELS = frozenset({"", "py", "py3", "ipython", "ipython3", "pycon"})  # and every "python…"

FENCE = re.compile(r"^\s*(`+)\s*([^\s`]*)")  # a fence line: its backticks and its label
FENCE_AT_END = re.compile(r"```[\w+#.-]*\s*$")  # "Here it is: ```python", "print(x)```"


def python_code(text: str) -> str | None:
    """The first Python code in ``text`` that parses (see the module's rules), or None."""
    for block in _candidates(_lines(text)):
        code = _code_in(block)
        if code is not None:
            return code
    return None


# -- blocks ---------------------------------------------------------------------------------------------------

def _lines(text: str) -> list[str]:
    """The answer's lines, each fence on a line of its own."""
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\x00", "").split("\n"):
        match = FENCE_AT_END.search(line)
        if match and line[:match.start()].strip():
            lines += [line[:match.start()].rstrip(), line[match.start():].strip()]
        else:
            lines.append(line)
    return lines


def _fence(line: str) -> str | None:
    """The label of a fence line ("" when bare), None for any other line."""
    match = FENCE.match(line)
    if match is None:
        return None
    ticks = match[1]
    if len(ticks) >= 3:
        return match[2].lower()
    return "" if not line.strip().strip("`") else None  # a stray "`" or "``" alone on its line


def _candidates(lines: list[str]) -> list[list[str]]:
    """The blocks that may hold Python, in the order they are tried."""
    fences = [i for i, line in enumerate(lines) if _fence(line) is not None]
    if not fences:
        return [lines]
    blocks: list[list[str]] = []
    first = fences[0]
    position = 0
    if _fence(lines[first]) == "" and _code_in(lines[:first]) is not None:  # closes a block never opened
        blocks.append(lines[:first])
        position = 1
    while position < len(fences):
        start = fences[position]
        end = fences[position + 1] if position + 1 < len(fences) else len(lines)
        label = _fence(lines[start]) or ""
        if label in PYTHON_LABELS or label.startswith("python"):
            blocks.append(lines[start + 1:end])
        position += 2
    return blocks


# -- the code in one block -------------------------------------------------------------------------------------

def _code_in(lines: list[str]) -> str | None:
    """The first run of lines in a block that parses and does something, leading and trailing prose left out."""
    lines = _session_inputs([_unquote(line) for line in lines])
    for start in range(len(lines)):
        if not _may_start_code(lines[start]):
            continue
        chunk = textwrap.dedent("\n".join(lines[start:])).split("\n")
        found = _longest_parsing_prefix(chunk)
        if found is None:
            continue
        tree, kept = found
        cut = any(line.strip() for line in chunk[len(kept):])
        if cut and all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in tree.body):
            continue  # the imports of code that breaks off: not an answer
        code = _without_noise(tree, kept)
        if code is not None:
            return code
    return None


def _session_inputs(lines: list[str]) -> list[str]:
    """The input lines of a ``>>>`` session, without prompts and printed output; other code as it is."""
    if not any(line.lstrip().startswith(">>>") for line in lines):
        return lines
    inputs = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith((">>>", "...")):
            inputs.append(stripped[4:] if stripped[3:4] == " " else stripped[3:])
    return inputs


def _unquote(line: str) -> str:
    """A whole line written as inline code, `df.head()`, without its backticks."""
    stripped = line.strip()
    if len(stripped) > 2 and stripped[0] == stripped[-1] == "`" and "`" not in stripped[1:-1]:
        return stripped[1:-1]
    return line


def _may_start_code(line: str) -> bool:
    """Whether code can begin with this line: it is code, or the start of a statement that goes on."""
    if not line.strip():
        return False
    compiler = codeop.CommandCompiler()
    compiler.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiler(line.strip(), "<cell>", "exec")
    except (SyntaxError, ValueError, OverflowError):
        return False
    return True


def _parse(lines: list[str]) -> ast.Module:
    """The module of these lines, if they compile as a cell (``await`` allowed at the top, as in IPython)."""
    text = "\n".join(lines)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes and the like: the cell's business when it runs
        tree = ast.parse(text)
        compile(tree, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    return tree


def _longest_parsing_prefix(lines: list[str]) -> tuple[ast.Module, list[str]] | None:
    """The module and lines of the longest prefix of ``lines`` that parses, ending before the line that breaks
    it or earlier; None when no prefix parses."""
    try:
        return _parse(lines), lines
    except SyntaxError as exc:
        end = min(len(lines) - 1, (exc.lineno or 1) - 1)  # code after the line that breaks it is not read
    for cut in range(end, 0, -1):
        try:
            return _parse(lines[:cut]), lines[:cut]
        except SyntaxError:
            continue
    return None


def _without_noise(tree: ast.Module, lines: list[str]) -> str | None:
    """The code without the statements a model writes as prose (``Sure``, ``Output: 42``, ``[1, 2, 3]``) at
    its start or end; None when nothing else is left."""
    body = list(tree.body)
    while body and _noise(body[0], leading=True):
        body.pop(0)
    while body and _noise(body[-1], leading=False):
        body.pop()
    if all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body):
        return None  # only strings: prose in quotes
    first = 0 if body[0] is tree.body[0] else _start_line(body[0]) - 1
    last = body[-1].end_lineno or len(lines)
    code = "\n".join(lines[first:last]).strip("\n")
    return code if code.strip() else None


def _start_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _noise(node: ast.stmt, leading: bool) -> bool:
    if isinstance(node, ast.AnnAssign):  # "Output: 42", "Note: x"
        return node.value is None and isinstance(node.target, ast.Name)
    if not isinstance(node, ast.Expr):
        return False
    value = node.value
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return False  # a docstring or a string shown on purpose
    if isinstance(value, ast.Name):
        return leading  # "Sure" before the code; a name at the end shows its value
    return _literal(value)


def _literal(node: ast.expr) -> bool:
    """A value written out (printed output, JSON), with nothing computed."""
    if isinstance(node, (ast.Constant, ast.Name)):
        return True
    if isinstance(node, ast.UnaryOp):
        return _literal(node.operand)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or _literal(k) for k in node.keys) and all(_literal(v) for v in node.values)
    return False
