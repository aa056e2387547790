"""P1: tokens/s of ancia.chat(stream=True) ÷ tokens/s of raw mlx_lm.stream_generate, same prompt and params.

Both decode the same number of tokens (end of text is masked out) on the default model; the rate is measured
from the first token to the last, alternating the two a few times and keeping each one's best run.
"""

from __future__ import annotations

import time

from common import fresh_data_dir, report

TOKENS = 64
ROUNDS = 3


def main() -> None:
    fresh_data_dir()
    import ancia_jupyter as ancia
    from ancia_jupyter.app import get_app
    from mlx_lm.generate import stream_generate
    from mlx_lm.sample_utils import make_sampler

    ancia.models.set_params(temperature=0.0, max_tokens=TOKENS)
    ancia.models.load()
    runtime = get_app().models.runtime
    eos = sorted(runtime.tokenizer.eos_token_ids)

    def no_eos(tokens, logits):
        logits[..., eos] = -1e9
        return logits

    runtime.logits_processors = [no_eos]
    question = "Write a short poem about the sea."

    def ancia_rate() -> float:
        first = last = None
        count = 0
        for event in ancia.chat(question, stream=True, tools=False):
            if event.type == "token":
                last = time.perf_counter()
                first = first or last
                count += 1
        return (count - 1) / (last - first)

    def raw_rate() -> float:
        messages = [{"role": "system", "content": ancia.settings.get()["system_prompt"]},
                    {"role": "user", "content": question}]
        prompt = runtime.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        first = last = None
        count = 0
        for _ in stream_generate(runtime.model, runtime.tokenizer, prompt, max_tokens=TOKENS,
                                 sampler=make_sampler(temp=0.0), logits_processors=[no_eos]):
            last = time.perf_counter()
            first = first or last
            count += 1
        return (count - 1) / (last - first)

    ancia_best = raw_best = 0.0
    for _ in range(ROUNDS):
        raw_best = max(raw_best, raw_rate())
        ancia_best = max(ancia_best, ancia_rate())
    report("P1 stream overhead", ancia_best / raw_best, "≥ 0.98",
           f"ancia {ancia_best:.1f} tok/s, raw mlx-lm {raw_best:.1f} tok/s")


if __name__ == "__main__":
    main()
