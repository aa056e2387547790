"""JSON schemas from Python signatures, and the argument checks that go with them.

A model only sees a tool through its JSON schema, and it gets arguments wrong often enough that every
call is checked against the same annotations the schema came from. Both directions live here, driven by
one walk over the type hints, so what the model is told and what is enforced can never drift apart.
Only the standard library is imported (pydantic models are recognised if pydantic is already in use).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import sys
import types
import typing
from collections import abc
from collections.abc import Callable
from typing import Any

JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|"
                      r"Returns?|Yields?|"
                      r"Raises|Examples?|Notes?|See Also|Attributes|Warnings?)\s*:?\s*$")
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(:\s*.*)?$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


class ArgumentError(ValueError):
    """Arguments that do not fit a tool's schema; the message is shown to the model so it can retry."""


@dataclasses.dataclass
class Parameters:
    """A function's parameters: the JSON schema the model sees and the annotation of each argument."""

    schema: dict[str, Any]
    annotations: dict[str, Any]
    required: list[str]
    extra: bool  # the function takes **kwargs: unknown arguments are passed through


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The description (text before any section) and each parameter's description.

    Google (``Args:``), NumPy (``Parameters`` + dashes) and Sphinx (``:param x:``) styles are read.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    numpy_style = False
    current: str | None = None
    item_indent = None
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        match = _SECTION.match(line)
        if match and (line.rstrip().endswith(":") or re.fullmatch(r"\s*-{3,}\s*", nxt)):
            numpy_style = bool(re.fullmatch(r"\s*-{3,}\s*", nxt))
            section, current, item_indent = match.group(1).lower(), None, None
            i += 2 if numpy_style else 1
            continue
        sphinx = _SPHINX_PARAM.match(line.strip())
        if sphinx:
            section, current = "sphinx", sphinx.group(1)
            params[current] = sphinx.group(2).strip()
        elif section is None:
            summary.append(line)
        elif section in ("args", "arguments", "parameters", "params", "keyword args", "keyword arguments"):
            indent = len(line) - len(line.lstrip())
            stripped = line.strip()
            if not stripped:
                current = None if item_indent is None else current
            elif item_indent is None or indent <= item_indent:
                item = (_NUMPY_ITEM if numpy_style else _GOOGLE_ITEM).match(stripped)
                if item:
                    item_indent = indent
                    current = item.group(1).lstrip("*")
                    params[current] = "" if numpy_style else item.group(3).strip()
            elif current is not None:
                params[current] = f"{params[current]} {stripped}".strip()
        elif section == "sphinx" and current and line.strip() and not line.strip().startswith(":"):
            params[current] = f"{params[current]} {line.strip()}".strip()
        i += 1
    return "\n".join(summary).strip(), params


def _is_pydantic_model(tp: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return bool(pydantic and inspect.isclass(tp) and issubclass(tp, pydantic.BaseModel))


def type_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema of one annotation; unknown annotations give ``{}`` (anything)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is inspect.Parameter.empty or tp is Any:
        return {}
    if origin is typing.Annotated:
        schema = type_schema(args[0])
        notes = [a for a in args[1:] if isinstance(a, str)]
        return {**schema, "description": notes[0]} if notes else schema
    if tp in JSON_TYPES:
        return {"type": JSON_TYPES[tp]}
    if origin is typing.Literal:
        kinds = sorted({JSON_TYPES[type(a)] for a in args if type(a) in JSON_TYPES})
        return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": list(args)}
    if inspect.isclass(tp) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        kinds = sorted({JSON_TYPES[type(v)] for v in values if type(v) in JSON_TYPES})
        return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}
    if origin in (typing.Union, types.UnionType):
        members = [type_schema(a) for a in args]
        if all(set(m) == {"type"} and isinstance(m["type"], str) for m in members):
            return {"type": [m["type"] for m in members]}
        return {"anyOf": members}
    if tp in (list, tuple, set, frozenset) or origin in (list, set, frozenset, abc.Sequence, abc.Set,
                                                          abc.MutableSequence, abc.Iterable):
        return {"type": "array", **({"items": type_schema(args[0])} if args else {})}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": type_schema(args[0])}
        return {"type": "array", "prefixItems": [type_schema(a) for a in args],
                "minItems": len(args), "maxItems": len(args)}
    if tp is dict or origin in (dict, abc.Mapping, abc.MutableMapping):
        return {"type": "object", **({"additionalProperties": type_schema(args[1])} if args else {})}
    if _is_pydantic_model(tp):
        return tp.model_json_schema()
    if dataclasses.is_dataclass(tp) and inspect.isclass(tp):
        hints = typing.get_type_hints(tp)
        fields = dataclasses.fields(tp)
        return {"type": "object", "properties": {f.name: type_schema(hints.get(f.name, Any)) for f in fields},
                "required": [f.name for f in fields if f.default is dataclasses.MISSING
                             and f.default_factory is dataclasses.MISSING], "additionalProperties": False}
    return {}


_ARTICLES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
             "array": "a list", "object": "an object", "null": "null"}


def _describe(tp: Any) -> str:
    schema = type_schema(tp)
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    kind = schema.get("type")
    kinds: list[str] = kind if isinstance(kind, list) else [kind] if kind else []
    return " or ".join(_ARTICLES.get(k, k) for k in kinds) or getattr(tp, "__name__", str(tp))


def coerce(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` (parsed JSON) against an annotation and convert it (Enum members, models, tuples)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = ArgumentError(f"{path} must be {_describe(tp)}, not {type(value).__name__} {value!r:.80}")
    if tp is inspect.Parameter.empty or tp is Any:
        return value
    if origin is typing.Annotated:
        return coerce(args[0], value, path)
    if tp is bool or tp is str or tp is type(None):
        if type(value) is not tp:
            raise bad
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if origin is typing.Literal:
        for allowed in args:
            if value == allowed and type(value) is type(allowed):
                return allowed
        raise bad
    if inspect.isclass(tp) and issubclass(tp, enum.Enum):
        for member in tp:
            if value == member.value and type(value) is type(member.value):
                return member
        raise bad
    if origin in (typing.Union, types.UnionType):
        for member in args:
            try:
                return coerce(member, value, path)
            except ArgumentError:
                continue
        raise bad
    schema = type_schema(tp)
    if schema.get("type") == "array":
        if not isinstance(value, list):
            raise bad
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ArgumentError(f"{path} must have exactly {len(args)} items")
            return tuple(coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=False)))
        item = args[0] if args else Any
        items = [coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        kinds = (tuple, set, frozenset)
        container = origin if origin in kinds else tp if tp in kinds else list
        return container(items)
    if schema.get("type") == "object" and not _is_pydantic_model(tp) and not dataclasses.is_dataclass(tp):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise bad
        inner = args[1] if len(args) == 2 else Any
        return {k: coerce(inner, v, f"{path}[{k!r}]") for k, v in value.items()}
    if _is_pydantic_model(tp):
        try:
            return tp.model_validate(value)
        except Exception as exc:  # pydantic.ValidationError, with its own clear text
            raise ArgumentError(f"{path} does not fit {tp.__name__}: {exc}") from None
    if dataclasses.is_dataclass(tp) and inspect.isclass(tp):
        if not isinstance(value, dict):
            raise bad
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(value) - names
        if unknown:
            raise ArgumentError(f"{path} has unknown field(s): {', '.join(sorted(unknown))}")
        try:
            return tp(**{k: coerce(hints.get(k, Any), v, f"{path}.{k}") for k, v in value.items()})
        except TypeError as exc:
            raise ArgumentError(f"{path}: {exc}") from None
    return value


def _hints(func: Callable) -> dict[str, Any]:
    """Resolved annotations; one that does not resolve (a class local to a function) counts as "anything"."""
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:
        pass
    hints = {}
    namespace = dict(getattr(func, "__globals__", {}))
    for name, annotation in getattr(func, "__annotations__", {}).items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # what typing.get_type_hints does, one at a time
            except Exception:
                continue
        hints[name] = annotation
    return hints


def parameters(func: Callable, param_docs: dict[str, str] | None = None) -> Parameters:
    """The ``parameters`` object of a function's schema, from its signature and type hints."""
    signature = inspect.signature(func)
    hints = _hints(func)
    properties: dict[str, Any] = {}
    annotations: dict[str, Any] = {}
    required: list[str] = []
    extra = False
    for name, param in signature.parameters.items():
        if param.kind is param.VAR_KEYWORD:
            extra = True
            continue
        if param.kind is param.VAR_POSITIONAL or name in ("self", "cls"):
            continue
        tp = hints.get(name, param.annotation if not isinstance(param.annotation, str) else Any)
        schema = dict(type_schema(tp))
        if param_docs and param_docs.get(name) and "description" not in schema:
            schema["description"] = param_docs[name]
        if param.default is param.empty:
            required.append(name)
        elif isinstance(param.default, enum.Enum):
            schema["default"] = param.default.value
        elif param.default is None or type(param.default) in (str, int, float, bool):
            schema["default"] = param.default
        properties[name] = schema
        annotations[name] = tp
    schema = {"type": "object", "properties": properties, "required": required}
    if not extra:
        schema["additionalProperties"] = False
    return Parameters(schema, annotations, required, extra)


def check_arguments(params: Parameters, arguments: Any) -> dict[str, Any]:
    """Validated, converted keyword arguments; ``ArgumentError`` says what is wrong and what is expected."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ArgumentError(f"arguments must be a JSON object, not {type(arguments).__name__}")
    missing = [n for n in params.required if n not in arguments]
    if missing:
        raise ArgumentError(f"missing required argument(s): {', '.join(missing)}")
    unknown = [n for n in arguments if n not in params.annotations]
    if unknown and not params.extra:
        allowed = ", ".join(params.annotations) or "none"
        raise ArgumentError(f"unknown argument(s): {', '.join(unknown)} (allowed: {allowed})")
    return {n: coerce(params.annotations[n], v, n) if n in params.annotations else v
            for n, v in arguments.items()}
