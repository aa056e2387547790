"""P12: prompt-lookup decoding, on the default model.

``%ancia fix`` on a 40-line cell with one error (the prompt, system prompt and token limit the magic sends,
which drafts from the prompt under the default setting ``prompt_lookup="auto"``), decode tokens/s ÷ with
prompt lookup off; and ordinary chat questions the same way (under "auto" they do not draft: they must not
get slower). Greedy; each prompt is asked on, off, off, on, and the ratio is the median over prompts of its
ratio (chat questions differ in length, and the VM's speed drifts), with how much of each answer both ways
wrote alike (all of it where llama.cpp's batches compute what single tokens do: prompt_lookup.py). Every
answer starts from a fresh context.
"""

from __future__ import annotations

import statistics

from common import fresh_data_dir, report

ROUNDS = 4  # rounds of the fix (on, off, off, on)
CELL = "\n".join(
    [f"def step_{i}(values):\n    total = sum(values) * {i}\n    return [v + total for v in values]" for i in range(12)]
    + ["data = list(range(10))", "result = step_3(data)", "print(resutl)", "print(len(result))"])
ERROR = "NameError: name 'resutl' is not defined"
CHAT = ["What is a good name for a cat?", "Why is the sky blue?", "Give me a tip for a job interview.",
        "What do bees eat?", "How do I boil an egg?", "What is the capital of Italy?"]


def decode_tps(prompt: str, system: str | None, lookup: bool, max_tokens: int | None,
               copies: bool) -> tuple[float, str]:
    import ancia_jupyter as ancia

    ancia.settings.update(prompt_lookup="auto" if lookup else False)  # the default, against none at all
    ancia.models.unload()  # a fresh context each time: what other chats hold never changes the numbers
    ancia.models.load()
    limit = {} if max_tokens is None else {"max_tokens": max_tokens}  # None: the model's own, as the magic asks
    response = ancia.chat(prompt, system=system, tools=False, copies=copies, **limit)
    return response.timings["generation_tps"], response.text


def compare(prompts: list[tuple[str, str | None]], max_tokens: int | None,
            copies: bool) -> tuple[float, float, float, float]:
    """(median over the prompts of the ratio of decode tokens/s, median with, median without, median share of
    the answer alike). Each prompt is asked four times, on, off, off, on: a drift of the VM's speed while it
    runs weighs on both sides alike, and each side's figure is its tokens over its time (the same answer both
    times)."""
    on, off, alike, ratios = [], [], [], []
    for prompt, system in prompts:
        runs: dict[bool, list[tuple[float, str]]] = {True: [], False: []}
        for lookup in (True, False, False, True):
            runs[lookup].append(decode_tps(prompt, system, lookup, max_tokens, copies))
        with_it, without = (len(runs[side]) / sum(1 / tps for tps, _ in runs[side]) for side in (True, False))
        text_on, text_off = runs[True][0][1], runs[False][0][1]
        same = next((n for n, (a, b) in enumerate(zip(text_on, text_off, strict=False)) if a != b),
                    min(len(text_on), len(text_off)))
        alike.append(same / max(1, len(text_off)))
        on.append(with_it)
        off.append(without)
        ratios.append(with_it / without)
    return statistics.median(ratios), statistics.median(on), statistics.median(off), statistics.median(alike)


def main() -> None:
    fresh_data_dir()
    import ancia_jupyter as ancia
    from ancia_jupyter.notebook.magics import FIX_PROMPT, FIX_SYSTEM

    ancia.models.set_params(temperature=0.0, context_window=2048)
    info = ancia.models.load()
    assert len(CELL.splitlines()) == 40
    fix = FIX_PROMPT.format(code=CELL, error=ERROR)
    ratio, on, off, alike = compare([(fix, FIX_SYSTEM)] * ROUNDS, None, copies=True)  # as %ancia fix asks
    report("P12 %ancia fix of a 40-line cell, decode tokens/s with prompt lookup ÷ without", ratio, "≥ 1.5",
           f"{on:.1f} vs {off:.1f} tok/s; {alike:.0%} of the answer written alike ({info['runtime']}, "
           f"{ROUNDS * 2} runs each)")
    ratio, on, off, alike = compare([(q, None) for q in CHAT] * 2, 96, copies=False)
    report("P12 ordinary chat, decode tokens/s with prompt lookup ÷ without", ratio, "≥ 0.98",
           f"{on:.1f} vs {off:.1f} tok/s; {alike:.0%} of each answer alike ({len(CHAT)} questions, each four "
           "times both ways)")


if __name__ == "__main__":
    main()
