"""P5 and P7: ancia.chat() on the auto-chosen runtime against raw llama-cpp-python, same GGUF, same prompt
tokens, same params (greedy), raw given all cores.

P5: decode tokens/s (first token to last) of ancia ÷ raw. P7: time to first token of a new chat's first turn
÷ raw's for the same prompt tokens. Runs alternate (ancia, raw, raw, ancia, …) and medians are reported,
since a shared 2-core VM drifts by ±20 % over seconds.
"""

from __future__ import annotations

import os
import statistics
import time

from common import fresh_data_dir, report

TOKENS = 128
RUNS = 7
QUESTIONS = [f"Write a long story about a {animal} who learns to sail, with many details."
             for animal in ("cat", "fox", "owl", "bear", "goat", "crab", "wolf", "seal", "mole", "frog",
                            "hare", "lynx", "yak", "emu")]


def timed(stream, started: float) -> tuple[float, float, int]:
    """(time to first token, decode tokens/s from the first token to the last, tokens)."""
    first = last = None
    count = 0
    for _ in stream:
        last = time.perf_counter()
        first = first or last
        count += 1
    assert first is not None and last is not None
    return first - started, (count - 1) / (last - first) if count > 1 else 0.0, count


def main() -> None:
    fresh_data_dir()
    from llama_cpp import Llama

    import ancia_jupyter as ancia
    from ancia_jupyter.app import get_app

    model = ancia.models.selected()
    ancia.models.set_params(temperature=0.0, max_tokens=TOKENS, context_window=2048)
    info = ancia.models.load()
    runtime = get_app().models.runtime
    print(f"ancia runs {model} on {info['runtime']} ({info['runtime_reason']})", flush=True)
    gguf = ancia.models.info(model)["path"] if info["runtime"] == "llama_cpp" else None
    if gguf is None:
        from ancia_jupyter.model_manager.files import gguf_cache_path

        gguf = str(gguf_cache_path(model))
    cores = os.cpu_count() or 1
    raw = Llama(model_path=gguf, n_ctx=2048, n_threads=cores, n_threads_batch=cores, verbose=False)
    system = ancia.settings.get()["system_prompt"]

    def ancia_run(question: str) -> tuple[float, float, int]:
        started = time.perf_counter()
        events = ancia.chat(question, stream=True, tools=False)
        return timed((e for e in events if e.type == "token"), started)

    def raw_run(question: str) -> tuple[float, float, int]:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        prompt = runtime.prompt_tokens(messages) if runtime.local else raw.tokenize(question.encode())
        started = time.perf_counter()
        chunks = raw.create_completion(prompt=prompt, max_tokens=TOKENS, temperature=0.0, top_k=1, top_p=1.0,
                                       stream=True)
        return timed((c for c in chunks if c["choices"][0]["text"]), started)

    ancia_run("warm up"), raw_run("warm up")
    mine, theirs = [], []
    for i in range(RUNS):
        a, b = QUESTIONS[2 * i], QUESTIONS[2 * i + 1]
        if i % 2 == 0:
            mine.append(ancia_run(a)), theirs.append(raw_run(b))
        else:
            theirs.append(raw_run(a)), mine.append(ancia_run(b))
    decode = statistics.median(m[1] for m in mine) / statistics.median(t[1] for t in theirs)
    ttft = statistics.median(m[0] for m in mine) / statistics.median(t[0] for t in theirs)
    report("P5 decode tokens/s, ancia ÷ raw llama-cpp-python", decode, "≥ 0.9",
           f"ancia {statistics.median(m[1] for m in mine):.1f} tok/s, raw "
           f"{statistics.median(t[1] for t in theirs):.1f} tok/s ({info['runtime']}, {RUNS} runs each)")
    report("P7 time to first token of a new chat, ancia ÷ raw llama-cpp-python", ttft, "≤ 1.5",
           f"ancia {statistics.median(m[0] for m in mine) * 1000:.0f} ms, raw "
           f"{statistics.median(t[0] for t in theirs) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
