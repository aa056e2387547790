"""P12: prompt-lookup decoding, on the default model.

``%ancia fix`` on a 40-line cell with one error (the prompt, system prompt and token limit the magic sends,
which drafts from the prompt under the default setting ``prompt_lookup="auto"``), decode tokens/s ÷ with
prompt lookup off; and ordinary chat questions the same way (under "auto" they do not draft: they must not
get slower). Greedy; each prompt is asked on, off, off, on, and each side's figure is all its tokens over all
its decoding time, with how much of each answer both ways wrote alike (all of it where llama.cpp's batches
compute what single tokens do: prompt_lookup.py). Every answer starts from a fresh context.

``python p12_prompt_lookup.py mlx`` measures the same fix on MLX, where only ``prompt_lookup=True`` drafts
(its batches round otherwise than single tokens), at a 320-token limit and one round (MLX on a CPU decodes
~7 tokens/s).
"""

from __future__ import annotations

import statistics
import sys

from common import fresh_data_dir, report

RUNTIME = sys.argv[1] if len(sys.argv) > 1 else "auto"  # or mlx / llama_cpp
ROUNDS = 4 if RUNTIME != "mlx" else 1  # rounds of the fix (on, off, off, on)
ON = "auto" if RUNTIME != "mlx" else True  # the setting drafting is measured with: the default where it drafts
CELL = "\n".join(
    [f"def step_{i}(values):\n    total = sum(values) * {i}\n    return [v + total for v in values]" for i in range(12)]
    + ["data = list(range(10))", "result = step_3(data)", "print(resutl)", "print(len(result))"])
ERROR = "NameError: name 'resutl' is not defined"
CHAT = ["What is a good name for a cat?", "Why is the sky blue?", "Give me a tip for a job interview.",
        "What do bees eat?", "How do I boil an egg?", "What is the capital of Italy?"]


def decode(prompt: str, system: str | None, lookup: bool, max_tokens: int | None,
           copies: bool) -> tuple[int, float, str]:
    """(tokens written, seconds of decoding, the answer)."""
    import ancia_jupyter as ancia

    ancia.settings.update(prompt_lookup=ON if lookup else False)
    ancia.models.unload()  # a fresh context each time: what other chats hold never changes the numbers
    ancia.models.load()
    limit = {} if max_tokens is None else {"max_tokens": max_tokens}  # None: the model's own, as the magic asks
    response = ancia.chat(prompt, system=system, tools=False, copies=copies, **limit)
    tokens = response.usage["completion_tokens"]
    return tokens, tokens / response.timings["generation_tps"], response.text


def compare(prompts: list[tuple[str, str | None]], max_tokens: int | None,
            copies: bool) -> tuple[float, float, float, float]:
    """(ratio of decode tokens/s, tokens/s with, without, median share of an answer written alike). Each
    prompt is asked four times, on, off, off, on, so that a drift of the VM's speed weighs on both sides alike;
    each side's tokens/s is all its tokens over all its decoding time (a two-line answer's own rate is mostly
    noise)."""
    tokens = {True: 0, False: 0}
    seconds = {True: 0.0, False: 0.0}
    alike = []
    for prompt, system in prompts:
        texts: dict[bool, str] = {}
        for lookup in (True, False, False, True):
            written, took, texts[lookup] = decode(prompt, system, lookup, max_tokens, copies)
            tokens[lookup] += written
            seconds[lookup] += took
        same = next((n for n, (a, b) in enumerate(zip(texts[True], texts[False], strict=False)) if a != b),
                    min(len(texts[True]), len(texts[False])))
        alike.append(same / max(1, len(texts[False])))
    on, off = (tokens[side] / seconds[side] for side in (True, False))
    return on / off, on, off, statistics.median(alike)


def main() -> None:
    fresh_data_dir()
    import ancia_jupyter as ancia
    from ancia_jupyter.notebook.magics import FIX_PROMPT, FIX_SYSTEM

    ancia.models.set_runtime(ancia.models.selected(), RUNTIME)
    ancia.models.set_params(temperature=0.0, context_window=2048)
    info = ancia.models.load()
    assert len(CELL.splitlines()) == 40
    fix = FIX_PROMPT.format(code=CELL, error=ERROR)
    limit = None if RUNTIME != "mlx" else 320  # None: the model's own, as %ancia fix asks
    ratio, on, off, alike = compare([(fix, FIX_SYSTEM)] * ROUNDS, limit, copies=True)  # as %ancia fix asks
    report(f"P12 %ancia fix of a 40-line cell, decode tokens/s with prompt lookup ({ON!r}) ÷ without", ratio,
           "≥ 1.5",
           f"{on:.1f} vs {off:.1f} tok/s; {alike:.0%} of the answer written alike ({info['runtime']}, "
           f"{ROUNDS * 2} runs each)")
    if RUNTIME == "mlx":
        return
    ratio, on, off, alike = compare([(q, None) for q in CHAT] * 2, 96, copies=False)
    report("P12 ordinary chat, decode tokens/s with prompt lookup ÷ without", ratio, "≥ 0.98",
           f"{on:.1f} vs {off:.1f} tok/s; {alike:.0%} of each answer alike ({len(CHAT)} questions, each four "
           "times both ways)")


if __name__ == "__main__":
    main()
