"""Prompt-lookup decoding on llama.cpp: drafts taken from where the text so far already appeared are checked in
one batch; what is written is what plain decoding writes (greedy, token for token, on a build whose batches
compute what single tokens do), or follows the same distribution (sampled)."""

from __future__ import annotations

from collections import Counter

import pytest
from scripted import says, scripted
from test_llama_cpp import GREEDY, ask, loaded, user
from tiny_gguf import build_tiny_gguf

import ancia_jupyter as ancia
from ancia_jupyter.errors import InvalidValueError
from ancia_jupyter.notebook.magics import FIX_PROMPT, FIX_SYSTEM
from ancia_jupyter.runtimes import llama_cpp as llama_cpp_runtime
from ancia_jupyter.runtimes.base import PromptCache
from ancia_jupyter.runtimes.prompt_lookup import SamplingRule, exact_batches, find_draft

CODE = "\n".join(f"def scale_{i}(values):\n    return [v * {i} for v in values]" for i in range(8))


@pytest.fixture(scope="module")
def smol(smollm2_gguf):
    yield from loaded(smollm2_gguf)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    yield from loaded(build_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf"))


def decodes(runtime, monkeypatch) -> list[int]:
    """The sizes of the batches the runtime decodes from now on."""
    sizes: list[int] = []
    real = runtime.context.decode
    monkeypatch.setattr(runtime.context, "decode",
                        lambda seq, tokens, every=False: (sizes.append(len(tokens)), real(seq, tokens, every))[1])
    return sizes


def test_a_draft_is_what_followed_the_earlier_occurrences_of_the_last_tokens_as_far_as_they_agree():
    assert find_draft([1, 2, 3, 9, 9, 1, 2, 3], limit=3) == [9, 9, 1]  # one occurrence: what followed it
    assert find_draft([1, 2, 3, 7, 7, 0, 1, 2, 3, 7, 7, 5, 1, 2, 3], limit=8) == [7, 7]  # the latest two part at 5/0
    older = [1, 2, 3, 6, 0]  # only the latest two count
    assert find_draft([*older, 1, 2, 3, 7, 9, 0, 1, 2, 3, 7, 9, 0, 1, 2, 3], limit=8) == [7, 9, 0, 1, 2, 3]
    assert find_draft([1, 2, 4, 5, 1, 2], limit=4) == []  # two tokens in common are too little to guess from
    assert find_draft([0, 1, 2, 3, 7, 1, 2, 3, 8, 1, 2, 3], limit=4) == []  # the latest two "1 2 3" go on as 7 and 8
    assert find_draft([1, 2, 3, 4], limit=4) == [] and find_draft([1, 1], limit=0) == []


def test_batches_are_exact_without_llamafile_kernels_on_weights_the_cpu_does_not_repack():
    built = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | OPENMP = 1 | REPACK = 1 | "
    assert exact_batches(built, 3) and exact_batches(built, 1)  # Q4_1 (the default model), F16
    assert not exact_batches(built.replace("OPENMP", "LLAMAFILE = 1 | OPENMP"), 3)  # batches of 2+ switch kernels
    assert not exact_batches(built, 2) and not exact_batches(built, 15)  # Q4_0, Q4_K_M: repacked, gemm from 4
    assert not exact_batches(built, None)  # a file that does not say


def test_the_installed_llama_cpp_computes_a_batch_as_it_computes_single_tokens(smol):
    assert smol.exact_batches


def test_an_answer_that_copies_its_prompt_is_written_in_fewer_decodes_and_is_the_same(tiny, monkeypatch):
    messages = user(f"Copy this:\n{CODE}")
    with scripted(says(CODE, CODE)):
        tiny.prompt_lookup = False
        plain, _, _ = ask(tiny, messages, PromptCache(), max_tokens=400)
        sizes = decodes(tiny, monkeypatch)
        tiny.prompt_lookup = True
        drafted, last, _ = ask(tiny, messages, PromptCache(), max_tokens=400)
    assert plain == drafted == CODE
    generated = [s for s in sizes if s < 128]  # the decodes after the prompt's
    assert len(generated) < last.generation_tokens / 2  # several tokens a decode
    assert max(generated) > 1


def test_greedy_decoding_writes_the_same_tokens_with_and_without_lookup(tiny):
    """Token for token, on a model left to its own choices (no script), with a prompt full of repeats."""
    messages = user("one two three four " * 20)
    results = []
    for lookup in (False, True):
        tiny.prompt_lookup = lookup
        prompt = tiny.prompt_tokens(messages)
        chunks = list(tiny.stream(prompt, {**GREEDY, "max_tokens": 120}, cache=PromptCache()))
        results.append(("".join(c.text for c in chunks), chunks[-1].generation_tokens))
    assert results[0] == results[1]


def test_the_real_default_model_writes_a_whole_fix_the_same_with_and_without_lookup(smol, monkeypatch):
    """What `%ancia fix` asks of the model, on a cell long enough for the answer to copy much of it: every
    token the same, in far fewer decodes. Both start from an empty context: where other chats' cells lie in the
    shared KV buffer changes the rounding of any answer, drafted or not."""
    cell = "\n".join([f"def step_{i}(values):\n    total = sum(values) * {i}\n    return [v + total for v in values]"
                      for i in range(12)] + ["data = list(range(10))", "print(step_3(dta))"])
    messages = [{"role": "system", "content": FIX_SYSTEM},
                {"role": "user", "content": FIX_PROMPT.format(code=cell, error="NameError: name 'dta' is not defined")}]
    prompt = smol.prompt_tokens(messages)
    results = []
    for lookup in (False, True):
        smol.prompt_lookup = lookup
        smol.context.clear()
        sizes = decodes(smol, monkeypatch)
        chunks = list(smol.stream(prompt, {**GREEDY, "max_tokens": 300}, cache=PromptCache()))
        results.append(("".join(c.text for c in chunks), chunks[-1].generation_tokens, len(sizes)))
        monkeypatch.undo()
    (plain, written, plain_decodes), (drafted, drafted_written, drafted_decodes) = results
    assert drafted == plain and drafted_written == written == 300 and plain.count("def step_") > 4
    assert drafted_decodes < plain_decodes * 0.75


def test_a_stop_still_lands_within_a_token_while_drafting(tiny):
    calls = []

    def stop_after_five() -> bool:
        calls.append(1)
        return len(calls) >= 5

    with scripted(says(CODE)):
        tiny.prompt_lookup = True
        _, last, _ = ask(tiny, user(f"Copy this:\n{CODE}"), PromptCache(), should_stop=stop_after_five,
                         max_tokens=400)
    assert last.finish_reason == "stopped" and last.generation_tokens <= 5


def test_sampled_tokens_follow_the_same_distribution_with_and_without_lookup(tiny):
    """The speculative-sampling rule: a certain draft kept with probability p(d), else a token drawn from p
    without d. The first drafted position's token counts, over many seeds, match plain sampling's."""
    messages = user("a b c d e f a b c d e f a b c d e f a b c")
    counts: dict[bool, Counter] = {}
    for lookup in (False, True):
        tiny.prompt_lookup = lookup
        seen: Counter = Counter()
        for seed in range(300):
            prompt = tiny.prompt_tokens(messages)
            chunks = list(tiny.stream(prompt + tiny.text_tokens(" a b c"), {
                **GREEDY, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "max_tokens": 2, "seed": seed},
                cache=PromptCache()))
            seen["".join(c.text for c in chunks)] += 1
        counts[lookup] = seen
    outcomes = set(counts[False]) | set(counts[True])
    distance = sum(abs(counts[False][o] - counts[True][o]) for o in outcomes) / 2 / 300
    assert distance < 0.15, (counts[False].most_common(5), counts[True].most_common(5))


def test_the_sampling_rule_keeps_a_likely_draft_often_and_an_unlikely_one_rarely():
    rule = SamplingRule({"temperature": 1.0, "seed": 1})
    logits = [4.0, 0.0, 0.0, 0.0]  # token 0 has ~95 %
    kept = sum(rule.check(logits, 0)[0] for _ in range(2000)) / 2000
    assert 0.9 < kept < 0.99
    refused = [rule.check(logits, 3) for _ in range(2000)]
    assert sum(k for k, _ in refused) / 2000 < 0.05
    assert all(token != 3 for k, token in refused if not k)  # a refused draft is never written


@pytest.fixture
def tiny_gguf_picked(tmp_path_factory) -> str:
    path = build_tiny_gguf(tmp_path_factory.mktemp("picked-gguf") / "tiny.gguf")
    ancia.models.register("tiny-gguf", str(path), title="Tiny GGUF")
    ancia.models.select("tiny-gguf")
    ancia.models.set_params("tiny-gguf", temperature=0.0, max_tokens=40, context_window=512)
    return "tiny-gguf"


def drafting_asked(monkeypatch) -> list[bool]:
    """Whether each generation from now on was asked to draft from its prompt."""
    asked: list[bool] = []
    real = llama_cpp_runtime.draft_and_check
    monkeypatch.setattr(llama_cpp_runtime, "draft_and_check",
                        lambda *args, **kwargs: (asked.append(kwargs["lookup"]), real(*args, **kwargs))[1])
    return asked


def test_by_default_only_answers_that_copy_their_prompt_are_drafted(tiny_gguf_picked, monkeypatch):
    """A refused draft costs a batch, so an ordinary question is decoded plainly; a fix, code for a cell, an
    edited question and a continued answer copy their prompt and are drafted."""
    asked = drafting_asked(monkeypatch)
    with scripted(says("Plain.", "def f():\n    return 1", "Again.", "Edited.")):
        first = ancia.chat("An ordinary question")
        ancia.chat("Copy def f():\n    return 1", copies=True)
        chat = ancia.chats.get(first.chat_id)
        chat.regenerate()
        question = next(m for m in chat.history() if m["role"] == "user")
        chat.edit_and_resend(question["id"], "An edited question")
    assert asked == [False, True, False, True]


def test_the_setting_drafts_for_every_answer_or_for_none(tiny_gguf_picked, monkeypatch):
    asked = drafting_asked(monkeypatch)
    with scripted(says("One.", "Two.", "Three.", "Four.")):
        ancia.settings.update(prompt_lookup=True)
        ancia.chat("An ordinary question")
        ancia.settings.update(prompt_lookup=False)
        ancia.chat("An ordinary question", copies=True)
    assert asked == [True, False]
    for wrong in ("sometimes", 1, 0, None):
        with pytest.raises(InvalidValueError, match="'auto'"):
            ancia.settings.update(prompt_lookup=wrong)
    assert ancia.settings.get()["prompt_lookup"] is False


def test_by_default_nothing_is_drafted_where_a_batch_rounds_differently(tiny_gguf_picked, monkeypatch):
    """A llama.cpp built with llamafile's kernels, or weights the CPU repacks: a checked draft could write other
    words than plain decoding, so "auto" leaves every answer to plain decoding; True still drafts."""
    monkeypatch.setattr(llama_cpp_runtime, "exact_batches", lambda system_info, file_type: False)
    asked = drafting_asked(monkeypatch)
    with scripted(says("def f():\n    return 1", "def f():\n    return 1")):
        ancia.chat("Copy def f():\n    return 1", copies=True)
        ancia.settings.update(prompt_lookup=True)
        ancia.chat("Copy def f():\n    return 1", copies=True)
    assert asked == [False, True]
