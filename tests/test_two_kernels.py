"""Two notebooks open at once: two real kernels of one user answer at the same time into one database."""

from __future__ import annotations

import json
import threading

from test_magics import Kernel, kernel_env

QUESTIONS = 12
ASK = """
import json as _json, ancia_jupyter as ancia
_statuses = [ancia.chat(f"kernel {name} question {{i}}", max_tokens=6, tools=False).status
             for i in range({n})]
print(_json.dumps(_statuses))
"""


def test_two_kernels_answer_at_the_same_time_without_database_errors(tmp_path, tiny_model_dir):
    env = kernel_env(tmp_path / "shared-data", tmp_path / "models")
    kernels = [Kernel(env, str(tmp_path)) for _ in range(2)]
    try:
        kernels[0].run(f"import ancia_jupyter as ancia\nancia.models.register('tiny', {str(tiny_model_dir)!r})\n"
                       "ancia.models.select('tiny')").ok()
        results: dict[str, list] = {}

        def ask(name: str, kernel: Kernel) -> None:
            run = kernel.run(ASK.format(name=name, n=QUESTIONS),
                             timeout=300).ok()
            results[name] = json.loads(run.stdout)

        threads = [threading.Thread(target=ask, args=(f"k{i}", k)) for i, k in enumerate(kernels)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(320)
        assert results == {"k0": ["complete"] * QUESTIONS, "k1": ["complete"] * QUESTIONS}
        counts = kernels[1].value("[c['message_count'] for c in ancia.chats.list()]")
        assert sorted(counts) == [2] * (2 * QUESTIONS)
    finally:
        for k in kernels:
            k.close()
