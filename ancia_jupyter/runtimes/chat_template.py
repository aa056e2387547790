"""Chat templates rendered the way Hugging Face renders them, for runtimes that read a template themselves.

A GGUF file carries its model's Jinja chat template; rendering it with the same environment as
``transformers`` (sandboxed, ``trim_blocks``/``lstrip_blocks``, ``raise_exception``, a ``tojson`` that keeps
non-ASCII text and does not escape HTML, ``strftime_now``, ``{% generation %}`` blocks) gives the prompt the
model was trained on, token for token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

# For a model without a template: ChatML, the most common format among small instruct models.
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def merge_system(messages: list[dict]) -> list[dict]:
    """For templates that reject a system role: fold it into the first user message."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    for m in rest:
        if m["role"] == "user" and system:
            m["content"] = f"{system}\n\n{m['content']}"
            break
    return rest


def _raise_exception(message: str) -> None:
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


def compile_template(source: str) -> Any:
    """A ``jinja2.Template`` for ``source``; raises ``jinja2.TemplateError`` when it does not parse."""
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        """``{% generation %}`` marks the assistant's text for training masks; rendering keeps the body."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Any) -> str:
            return caller()

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(source)


def render(template: Any, messages: list[dict], *, tools: list[dict] | None = None,
           add_generation_prompt: bool = True, special_tokens: Mapping[str, str] | None = None) -> str:
    """The prompt text for ``messages``; ``special_tokens`` are ``bos_token``, ``eos_token`` and the like."""
    return template.render(messages=messages, tools=tools, add_generation_prompt=add_generation_prompt,
                           **(special_tokens or {}))
