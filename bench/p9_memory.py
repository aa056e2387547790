"""P9: resident memory with the default model loaded and one answer given, ancia ÷ raw llama-cpp-python.

Each side runs in a fresh process of its own: raw llama-cpp-python opens the same GGUF with a context of the
chat's window (2 048 tokens) and answers one question; ancia loads the default model and answers the same
question through ``ancia.chat``. The figure is each process's resident set size (RSS) after the answer.
"""

from __future__ import annotations

import json
import subprocess
import sys

from common import MODEL_CACHE, fresh_data_dir, report

QUESTION = "What is the capital of France?"
WINDOW = 2048

RAW = f"""
import json, os, psutil
from llama_cpp import Llama
cores = os.cpu_count() or 1
llm = Llama(model_path={{path!r}}, n_ctx={WINDOW}, n_threads=cores, n_threads_batch=cores, verbose=False)
list(llm.create_chat_completion([{{{{"role": "user", "content": {QUESTION!r}}}}}], max_tokens=32, stream=True))
print(json.dumps(psutil.Process().memory_info().rss))
"""

ANCIA = f"""
import json, psutil
import ancia_jupyter as ancia
ancia.models.set_params(temperature=0.0, max_tokens=32, context_window={WINDOW})
ancia.chat({QUESTION!r}, tools=False)
print(json.dumps(psutil.Process().memory_info().rss))
"""


def rss(code: str) -> int:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    fresh_data_dir()
    import ancia_jupyter as ancia

    path = ancia.models.pull()
    mine = rss(ANCIA)
    theirs = rss(RAW.format(path=str(path)))
    report("P9 resident memory, default model loaded and one answer, ancia ÷ raw llama-cpp-python", mine / theirs,
           "≤ 1.2", f"ancia {mine / 2**20:.0f} MB, raw {theirs / 2**20:.0f} MB (context of {WINDOW} tokens; "
           f"model cache {MODEL_CACHE})")


if __name__ == "__main__":
    main()
