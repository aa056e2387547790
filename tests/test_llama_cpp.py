"""The llama.cpp runtime: the real SmolLM2 GGUF for answers, parameters and prompt caches; a tiny random GGUF
whose output is scripted for tool calls, templates and text decoding."""

from __future__ import annotations

import pytest
from scripted import says, scripted
from tiny_gguf import build_tiny_gguf

from ancia_jupyter.config import DEFAULT_SYSTEM_PROMPT
from ancia_jupyter.errors import MemoryFitError, ModelError
from ancia_jupyter.runtimes.base import PromptCache, common_prefix
from ancia_jupyter.runtimes.llama_cpp import LlamaCppRuntime
from ancia_jupyter.runtimes.llama_sequences import SEQUENCES

GREEDY = {"temperature": 0.0, "max_tokens": 48, "context_window": 2048}
SYSTEM = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}]
ADD = [{"type": "function", "function": {"name": "add", "description": "Add two numbers.", "parameters": {
    "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}]


def user(text: str) -> list[dict]:
    return SYSTEM + [{"role": "user", "content": text}]


def ask(runtime, messages, cache=None, tools=None, should_stop=lambda: False, **params):
    """(answer text, last chunk, prompt tokens) of one streamed answer."""
    prompt = runtime.prompt_tokens(messages, tools)
    chunks = list(runtime.stream(prompt, {**GREEDY, **params}, cache=cache, tools=tools, should_stop=should_stop))
    assert all(c.finish_reason is None for c in chunks[:-1]) and chunks[-1].finish_reason
    return "".join(c.text for c in chunks), chunks[-1], prompt


def loaded(path):
    """A runtime with ``path`` loaded, unloaded when the fixture ends."""
    runtime = LlamaCppRuntime()
    runtime.load(path)
    yield runtime
    runtime.unload()


@pytest.fixture(scope="module")
def smol(smollm2_gguf):
    yield from loaded(smollm2_gguf)


# ---- the real model -----------------------------------------------------------------------------------------

def test_answers_a_factual_question(smol):
    text, last, prompt = ask(smol, user("What is the capital of France?"))
    assert "Paris" in text
    assert last.finish_reason == "stop"  # <|im_end|> ended it, not the token limit
    assert last.prompt_tokens == len(prompt) and 0 < last.generation_tokens < GREEDY["max_tokens"]
    assert last.generation_tps > 0


def test_a_chat_remembers_what_it_was_told_and_a_fresh_chat_does_not(smol):
    told = user("My name is Zorblat.")
    first, _, _ = ask(smol, told, PromptCache())
    again, _, _ = ask(smol, told + [{"role": "assistant", "content": first},
                                    {"role": "user", "content": "What is my name?"}], PromptCache())
    fresh, _, _ = ask(smol, user("What is my name?"), PromptCache())
    assert "Zorblat" in again
    assert "Zorblat" not in fresh


def test_a_stop_request_ends_the_answer_within_one_token(smol):
    story = user("Write a long story about a dragon who learns to cook.")
    calls = []

    def stop_after_three() -> bool:
        calls.append(1)
        return len(calls) >= 3

    _, stopped, _ = ask(smol, story, should_stop=stop_after_three)
    _, control, _ = ask(smol, story)
    assert stopped.finish_reason == "stopped" and stopped.generation_tokens <= 4
    assert control.generation_tokens > 10  # it had more to say


def test_max_tokens_cuts_the_answer(smol):
    text, last, _ = ask(smol, user("Write a long story about a dragon."), max_tokens=5)
    assert last.finish_reason == "length" and last.generation_tokens <= 5 and text


def test_greedy_repeats_itself_and_sampling_varies_with_the_seed(smol):
    question = user("Name a fruit.")

    def read_afresh(**params) -> str:  # a context of its own: what other chats hold changes the rounding
        smol.context.clear()
        return ask(smol, question, max_tokens=12, **params)[0]

    assert read_afresh() == read_afresh()
    sampled = [read_afresh(temperature=1.0, top_p=1.0, top_k=0, seed=seed) for seed in (1, 2, 3, 1)]
    assert len(set(sampled[:3])) >= 2
    assert sampled[3] == sampled[0]


def test_turn_two_reads_only_its_new_tokens(smol, monkeypatch):
    cache = PromptCache()
    turn1 = user("Give me one tip for writing clear Python.")
    answer, _, prompt1 = ask(smol, turn1, cache)
    read: list[int] = []
    real_decode = smol.context.decode
    monkeypatch.setattr(smol.context, "decode",
                        lambda seq, tokens, every=False: (read.append(len(tokens)), real_decode(seq, tokens, every))[1])
    _, last, prompt2 = ask(smol, turn1 + [{"role": "assistant", "content": answer},
                                          {"role": "user", "content": "And one more?"}], cache)
    assert last.cached_tokens >= len(prompt1)
    assert read[0] == len(prompt2) - last.cached_tokens  # the prompt read: only what the cache lacked
    assert read[0] <= len(prompt2) - len(prompt1)


def test_a_new_chat_reads_only_what_it_does_not_share_with_the_chats_before(smol, monkeypatch):
    """Every chat starts with the same system prompt: a new chat takes those cells from a chat that holds
    them instead of reading them again. The cells are the ones it would have read: with the other chat's own
    cells gone (where other chats' cells lie changes the rounding), it answers bit for bit as in an empty
    context; and it keeps them when the other chat lets its cells go."""
    smol.context.clear()
    alone, _, _ = ask(smol, user("Name a fruit that is yellow."), PromptCache())
    smol.context.clear()
    _, _, first_prompt = ask(smol, user("What is the capital of Spain?"), PromptCache())
    shared = common_prefix(first_prompt, smol.prompt_tokens(user("Name a fruit.")))
    donor = next(s for s in smol.context.sequences if s.tokens)
    smol.context.truncate(donor, shared)  # only the shared cells left: the layout of an empty context
    read: list[int] = []
    real_decode = smol.context.decode
    monkeypatch.setattr(smol.context, "decode",
                        lambda seq, tokens, every=False: (read.append(len(tokens)), real_decode(seq, tokens, every))[1])
    cache = PromptCache()
    text, last, prompt = ask(smol, user("Name a fruit that is yellow."), cache)
    assert last.cached_tokens == shared > 20  # the system prompt and the user turn's opening
    assert read[0] == len(prompt) - shared
    assert text == alone
    smol.context.truncate(donor, 0)  # the other chat's cells go; this chat's stay
    history = user("Name a fruit that is yellow.") + [{"role": "assistant", "content": text}]
    again, last, _ = ask(smol, history + [{"role": "user", "content": "And a red one?"}], cache)
    assert last.cached_tokens >= len(prompt) and again


def test_more_chats_than_sequences_each_keep_their_cache(smol):
    names = ["Zorblat", "Quimby", "Trask", "Ulmo", "Vexa", "Wren"][: SEQUENCES + 2]
    caches = {name: PromptCache() for name in names}
    firsts = {}
    for name, cache in caches.items():  # the later chats take the sequences of the first ones
        messages = user(f"My name is {name}.")
        answer, _, prompt = ask(smol, messages, cache)
        firsts[name] = (messages + [{"role": "assistant", "content": answer}], prompt)
    first = caches[names[0]]
    assert first.nbytes > 0 and first.tokens[: len(firsts[names[0]][1])] == firsts[names[0]][1]  # saved as bytes
    for name, cache in caches.items():  # and back again, each from its saved or still held state
        history, prompt1 = firsts[name]
        question = history + [{"role": "user", "content": "What is my name?"}]
        text, last, _ = ask(smol, question, cache)
        assert last.cached_tokens >= len(prompt1) and text
    assert sum(name in ask(smol, firsts[name][0] + [{"role": "user", "content": "What is my name?"}], caches[name])[0]
               for name in names) >= 2  # the chats remember (the small model does not always say so)


def test_two_generations_stepped_in_turn_each_answer_their_own_question(smol):
    """Each reads and writes only its own sequence (the other's cells change the rounding, not the answer:
    bit for bit sameness holds for one layout, tested above)."""
    questions = [user("What is the capital of France?"), user("Name three colours.")]
    streams = [smol.stream(smol.prompt_tokens(q), GREEDY, cache=PromptCache()) for q in questions]
    texts, live = ["", ""], [True, True]
    while any(live):  # one step of each in turn, as the model worker does
        for i, stream in enumerate(streams):
            if live[i]:
                chunk = next(stream, None)
                live[i] = chunk is not None
                texts[i] += chunk.text if chunk else ""
    assert "Paris" in texts[0] and "Paris" not in texts[1]
    assert sum(colour in texts[1].lower() for colour in ("red", "blue", "green", "yellow", "black", "white")) >= 2


def test_token_counts_come_from_the_models_tokenizer(smol):
    for content in ("What is the capital of France?", "Ünïcode ☕ and code:\n\ndef f(x):\n    return x * 2"):
        message = {"role": "user", "content": content}
        added = smol.count_tokens(SYSTEM + [message]) - smol.count_tokens(SYSTEM + [{"role": "user", "content": ""}])
        assert smol.message_tokens(message) == added + 8  # what the content adds, plus role and separators


def test_images_are_refused(smol):
    prompt = smol.prompt_tokens(user("What is in this picture?"))
    with pytest.raises(ModelError, match="vision"):
        list(smol.stream(prompt, GREEDY, images=["photo.png"]))


# ---- a tiny random model, scripted ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_gguf_file(tmp_path_factory):
    return build_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf")


@pytest.fixture
def tiny(tiny_gguf_file):
    yield from loaded(tiny_gguf_file)


def test_a_tool_call_is_not_answer_text_and_ends_the_turn(tiny):
    assert tiny.supports_tools
    with scripted(says('Let me add.<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>')):
        text, last, _ = ask(tiny, [{"role": "user", "content": "1 + 2?"}], tools=ADD)
    assert text == "Let me add."
    assert last.finish_reason == "tool_calls"
    [call] = last.tool_calls
    assert (call.name, call.arguments, call.error) == ("add", {"a": 1, "b": 2}, None)


def test_a_malformed_tool_call_comes_back_with_an_error(tiny):
    with scripted(says('<tool_call>{"name": "add", "arguments": {"a": 1,</tool_call>')):
        text, last, _ = ask(tiny, [{"role": "user", "content": "1 + 2?"}], tools=ADD)
    [call] = last.tool_calls
    assert text == "" and last.finish_reason == "tool_calls"
    assert call.error and '"a": 1,' in call.raw


def test_without_tools_the_same_text_is_plain_answer(tiny):
    said = '<tool_call>{"name": "add", "arguments": {}}</tool_call>'
    with scripted(says(said)):
        text, last, _ = ask(tiny, [{"role": "user", "content": "1 + 2?"}])
    assert text == said and last.tool_calls == [] and last.finish_reason == "stop"


def test_tools_are_described_with_the_models_own_template(tiny, smol):
    messages = [{"role": "user", "content": "1 + 2?"}]
    described = tiny.model.detokenize(tiny.prompt_tokens(messages, ADD), special=True).decode()
    assert '"name": "add"' in described and "<tool_call>" in described
    assert smol.prompt_tokens(messages, ADD) == smol.prompt_tokens(messages)  # its template has no tools
    assert not smol.supports_tools


def test_uses_the_same_tool_parser_as_mlx_lm_for_the_same_template(tiny, tiny_model_dir):
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    mlx = load_tokenizer(tiny_model_dir)
    syntax = tiny.tool_syntax
    assert (syntax.tool_parser, syntax.tool_call_start, syntax.tool_call_end) == (
        mlx.tool_parser, mlx.tool_call_start, mlx.tool_call_end)


def test_characters_split_across_tokens_arrive_whole(tiny):
    assert len(tiny.model.tokenize("é".encode(), add_bos=False, special=False)) == 2  # one byte per token here
    prompt = tiny.prompt_tokens([{"role": "user", "content": "hi"}])
    with scripted(says("café ☕ ok")):
        pieces = [c.text for c in tiny.stream(prompt, GREEDY)]
    assert "".join(pieces) == "café ☕ ok" and not any("\ufffd" in p for p in pieces)


def test_the_context_opens_at_the_window_asked_for_and_grows_on_request(tiny):
    with scripted(says("ok", "ok")):
        ask(tiny, [{"role": "user", "content": "hi"}], context_window=512)
        assert tiny.context.n_ctx == 512  # the window, not more
        text, _, _ = ask(tiny, [{"role": "user", "content": "hi"}], context_window=1024)
    assert tiny.context.n_ctx >= 1024 and text == "ok"


def test_a_context_too_large_for_free_memory_is_refused_before_it_is_made(tiny, monkeypatch):
    import ancia_jupyter.runtimes.llama_sequences as sequences

    tiny.context.close()  # as after loading: no context yet
    monkeypatch.setattr(sequences, "available_memory_mb", lambda: 0)
    with pytest.raises(MemoryFitError, match="context_window"):
        ask(tiny, [{"role": "user", "content": "hi"}], context_window=2048)
    assert tiny.context.ctx is None  # nothing was made
    monkeypatch.undo()
    with scripted(says("ok")):
        assert ask(tiny, [{"role": "user", "content": "hi"}], context_window=512)[0] == "ok"


def test_a_template_that_refuses_a_system_role_gets_it_in_the_first_user_message(tmp_path):
    strict = ("{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}"
              "{% endif %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
              "{{ '<|im_start|>assistant\\n' }}")
    runtime = LlamaCppRuntime()
    runtime.load(build_tiny_gguf(tmp_path / "strict.gguf", chat_template=strict))
    text = runtime.model.detokenize(runtime.prompt_tokens(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]), special=True).decode()
    assert text == "<|im_start|>user\nBe brief.\n\nhi<|im_end|>\n<|im_start|>assistant\n"
    runtime.unload()


def test_a_gguf_without_a_template_gets_chatml(tmp_path):
    runtime = LlamaCppRuntime()
    runtime.load(build_tiny_gguf(tmp_path / "bare.gguf", chat_template=None))
    text = runtime.model.detokenize(runtime.prompt_tokens([{"role": "user", "content": "hi"}]), special=True).decode()
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" and not runtime.supports_tools
    runtime.unload()


def test_a_file_that_will_not_load_is_named_in_the_error(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + bytes(64))
    for path in (junk, tmp_path / "missing.gguf"):
        with pytest.raises(ModelError, match=path.name) as caught:
            LlamaCppRuntime().load(path)
        assert "\n" not in str(caught.value)


def test_a_snapshot_that_will_not_load_only_costs_time(tiny):
    with scripted(says("ok", "ok")):
        ask(tiny, [{"role": "user", "content": "something else entirely"}])  # the context holds another chat
        messages = [{"role": "user", "content": "hi"}]
        prompt = tiny.prompt_tokens(messages)
        broken = PromptCache(tokens=prompt, state=b"not a llama.cpp state" * 10, nbytes=210)
        text, last, _ = ask(tiny, messages, broken)
    assert text == "ok" and last.cached_tokens < len(prompt) - 1 and last.finish_reason == "stop"


def test_reading_ahead_leaves_a_follow_up_only_its_own_words(smol, monkeypatch):
    """While nobody waits, a chat's cells take the end of the last answer's turn and the next user turn's
    opening, which every follow-up starts with: the follow-up then reads only its own words."""
    cache = PromptCache()
    turn1 = user("Give me one tip for writing clear Python.")
    answer, _, _ = ask(smol, turn1, cache)
    history = turn1 + [{"role": "assistant", "content": answer}]
    ahead = smol.next_turn_tokens(history)
    assert smol.read_ahead(cache, history, None, GREEDY["context_window"]) > 2
    question = history + [{"role": "user", "content": "And one more?"}]
    _, last, prompt = ask(smol, question, cache)
    assert prompt[:len(ahead)] == ahead and last.cached_tokens == len(ahead)  # the turn's opening was read already
    assert len(prompt) - last.cached_tokens == len(smol._tokenize("And one more?<|im_end|>\n<|im_start|>assistant\n"))


def test_a_question_read_while_its_prompt_is_fitted_leaves_the_answer_its_last_token(smol):
    """A chat read ahead ends where a question starts: its question's words and the answer turn's opening are
    read before the prompt is ready (``read_question``), and the answer, the same as without, reads one token."""
    turn1 = user("Give me one tip for writing clear Python.")
    answers = []
    for early in (False, True):
        smol.context.clear()  # the same cells each time: where other chats lie changes the rounding
        cache = PromptCache()
        answer, _, _ = ask(smol, turn1, cache)
        history = turn1 + [{"role": "assistant", "content": answer}]
        assert smol.read_ahead(cache, history, None, GREEDY["context_window"]) > 2
        if early:
            assert smol.read_question(cache, "And one more?", GREEDY["context_window"]) > 3
        text, last, prompt = ask(smol, history + [{"role": "user", "content": "And one more?"}], cache)
        answers.append(text)
    assert last.cached_tokens == len(prompt) - 1 and answers[0] == answers[1]


def test_a_question_is_not_read_early_where_the_cells_do_not_end_where_a_question_starts(smol):
    """Right after an answer (not read ahead yet) the end of its turn is not known, near the window there is no
    room, and a long question is read by its answer a slice at a time (other chats step between): nothing is
    read early. A guess the prompt proves wrong (here, another question) only costs time."""
    turn1 = user("Name a fruit.")
    other = "And a tree?"
    answers = []
    for guess in (None, "And a vegetable?"):
        smol.context.clear()
        cache = PromptCache()
        answer, _, _ = ask(smol, turn1, cache)
        assert smol.read_question(cache, "And a vegetable?", GREEDY["context_window"]) == 0
        history = turn1 + [{"role": "assistant", "content": answer}]
        smol.read_ahead(cache, history, None, GREEDY["context_window"])
        assert smol.read_question(cache, "And a vegetable?", len(smol.next_turn_tokens(history)) + 20) == 0
        assert smol.read_question(cache, "Now list every vegetable you know. " * 6, GREEDY["context_window"]) == 0
        if guess:
            assert smol.read_question(cache, guess, GREEDY["context_window"]) > 3
        text, last, prompt = ask(smol, history + [{"role": "user", "content": other}], cache)
        answers.append(text)
    assert last.cached_tokens < len(prompt) - 1 and answers[0] == answers[1] and answers[0]


def test_reading_ahead_is_skipped_for_a_chat_near_its_window(smol):
    cache = PromptCache()
    history = user("Hello there.") + [{"role": "assistant", "content": "Hi!"}]
    assert smol.read_ahead(cache, history, None, len(smol.next_turn_tokens(history)) + 10) == 0


def restarted(runtime, told: list[dict], path) -> tuple[list[dict], list[int], PromptCache]:
    """The chat ``told`` answered, its cache saved to ``path`` and read back into an emptied context, as
    after a kernel restart: (the chat with its answer, the first prompt, the cache read back)."""
    cache = PromptCache()
    answer, _, first = ask(runtime, told, cache)
    assert runtime.save_cache(cache, path)
    runtime.context.clear()
    restored = runtime.load_cache(path)
    assert restored is not None and restored.state is not None
    return told + [{"role": "assistant", "content": answer}], first, restored


def test_a_cache_placed_ahead_of_its_question_is_used_by_it(smol, tmp_path):
    """``warm`` puts a snapshot into a sequence while the question's prompt is still being built."""
    history, first, restored = restarted(smol, user("My name is Zorblat and I have three goats."),
                                         tmp_path / "chat.kv")
    smol.warm(restored)
    assert restored.state is None and any(s.owned_by(restored) for s in smol.context.sequences)
    smol.warm(restored)  # placed already: nothing to do
    text, last, _ = ask(smol, history + [{"role": "user", "content": "What do I keep?"}], restored)
    assert last.cached_tokens >= len(first) and text


@pytest.mark.parametrize("text", ["", "x", "héllo wörld — ünïcode 🐐🐐", "<|im_start|>user\nhi<|im_end|>\n",
                                  "def f(x):\n    return x ** 2\n" * 200])
def test_the_prompt_is_tokenized_as_llama_cpp_python_tokenizes_it(smol, text):
    assert smol._tokenize(text) == smol.model.tokenize(text.encode(), add_bos=False, special=True)


def test_a_cache_that_cannot_be_placed_ahead_is_placed_by_its_question(smol, monkeypatch, tmp_path):
    history, first, restored = restarted(smol, user("My name is Quimby and I grow leeks."), tmp_path / "chat.kv")

    def no_room():
        raise ModelError("no room")

    with monkeypatch.context() as patch:
        patch.setattr(smol.context, "_make_room", no_room)
        smol.warm(restored)
    assert restored.state is not None and not any(s.owned_by(restored) for s in smol.context.sequences)
    _, last, _ = ask(smol, history + [{"role": "user", "content": "What do I grow?"}], restored)
    assert last.cached_tokens >= len(first)


@pytest.mark.parametrize("file_kept", [True, False])
def test_a_sequence_given_up_is_copied_to_memory_unless_its_file_holds_it(smol, tmp_path, file_kept):
    cache = PromptCache()
    ask(smol, user("My name is Trask and I sail."), cache)
    path = tmp_path / "chat.kv"
    tokens = smol.save_cache(cache, path)
    assert tokens
    cache.on_disk = (path, tokens)
    if not file_kept:
        path.unlink()  # trimmed, or erased by another kernel: the copy on disk is gone
    sequence = next(s for s in smol.context.sequences if s.owned_by(cache))
    smol.context.evict(sequence)
    assert not sequence.tokens
    if file_kept:
        assert cache.state is None and not cache.tokens and not cache.disk_read  # to be read from the file
    else:
        assert cache.state is not None and cache.tokens == tokens
