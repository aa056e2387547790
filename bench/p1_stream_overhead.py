"""P1: tokens/s of ancia.chat(stream=True) ÷ tokens/s of raw mlx_lm.stream_generate, same prompt and params.

Both decode the same number of tokens on the default model: end of text is masked out by tests/scripted.py,
through the same logits processor on both paths. The rate is measured from the first token to the last. The
machine's speed drifts by ±20 % over seconds on a shared 2-core VM, so the two run as adjacent pairs (order
alternating) and the ratios printed are medians of the pairs' ratios: per CPU second (all threads of the
process; what ancia's own work adds, immune to time stolen by other machines) and per wall-clock second.
"""

from __future__ import annotations

import statistics
import sys
import time

from common import REPO, fresh_data_dir, report

TOKENS = 48
PAIRS = 9


def main() -> None:
    fresh_data_dir()
    sys.path.insert(0, str(REPO / "tests"))
    from mlx_lm.sample_utils import make_sampler
    from scripted import endless, scripted

    import ancia_jupyter as ancia
    from ancia_jupyter.app import get_app

    ancia.models.set_runtime(ancia.models.selected(), "mlx")  # this benchmark compares with raw mlx-lm
    ancia.models.set_params(temperature=0.0, max_tokens=TOKENS)
    ancia.models.load()
    runtime = get_app().models.runtime
    question = "Write a short poem about the sea."

    def rates(tokens) -> tuple[float, float]:
        """Tokens per wall-clock second and per CPU second (all threads), first token to last."""
        first = last = None
        count = 0
        for _ in tokens:
            last = (time.perf_counter(), time.process_time())
            first = first or last
            count += 1
        return (count - 1) / (last[0] - first[0]), (count - 1) / (last[1] - first[1])

    def ancia_rate() -> tuple[float, float]:
        return rates(e for e in ancia.chat(question, stream=True, tools=False) if e.type == "token")

    def raw_rate() -> tuple[float, float]:
        messages = [{"role": "system", "content": ancia.settings.get()["system_prompt"]},
                    {"role": "user", "content": question}]
        prompt = runtime.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        from mlx_lm.generate import stream_generate  # looked up here, as the runtime does: scripted too

        return rates(stream_generate(runtime.model, runtime.tokenizer, prompt, max_tokens=TOKENS,
                                     sampler=make_sampler(temp=0.0)))

    wall, cpu = [], []
    with scripted(endless()):  # the same logits processor on both paths
        for i in range(PAIRS):
            if i % 2 == 0:
                raw, mine = raw_rate(), ancia_rate()
            else:
                mine, raw = ancia_rate(), raw_rate()
            wall.append(mine[0] / raw[0])
            cpu.append(mine[1] / raw[1])
    report("P1 stream overhead (tokens per CPU second)", statistics.median(cpu), "≥ 0.98",
           f"median of {PAIRS} adjacent pairs; pair ratios " + " ".join(f"{r:.2f}" for r in cpu))
    report("P1 stream overhead (tokens per wall second)", statistics.median(wall), "≥ 0.98",
           "same pairs, wall clock (noisy on a shared VM); pair ratios " + " ".join(f"{r:.2f}" for r in wall))

if __name__ == "__main__":
    main()
