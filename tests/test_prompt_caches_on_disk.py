"""A chat's prompt cache is kept on disk: after a kernel restart its next question reads only its new tokens,
with the same answer as a chat read afresh. The files are private, go with their chat, stay within their
budget, and are never used for a model file that changed."""

from __future__ import annotations

import os
import stat
import time

import pytest
from scripted import says, scripted

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.app import close_app, get_app

TELL = ("My name is Zorblat and I keep three goats called Ash, Birch and Cedar on a farm by the sea. "
        "Every morning I walk them along the cliffs before breakfast.")


def settle() -> None:
    assert get_app().models.resident.scheduler.settle(60)


def cache_files(home) -> list:
    folder = home / "prompt-caches"
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def ask(question: str, chat: int | None = None, **options) -> tuple[str, ev.Done]:
    events = list(ancia.chat(question, chat=chat, stream=True, tools=False, **options))
    done = events[-1]
    assert isinstance(done, ev.Done), events
    return "".join(e.text for e in events if isinstance(e, ev.Token) and e.message_id == done.message_id), done


def test_after_a_restart_a_chat_reads_only_its_new_tokens(smollm2, ancia_home):
    _, first = ask(TELL)
    twin = ancia.chats.duplicate(first.chat_id).id  # the same messages, no cache at all
    settle()
    files = cache_files(ancia_home)
    assert len(files) == 1 and files[0].name.startswith(f"{first.chat_id}-")
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700

    close_app()  # as a kernel restart: nothing is left in memory
    text, again = ask("What are my goats called?", chat=first.chat_id)
    assert again.usage["cached_tokens"] >= first.usage["prompt_tokens"] - 1 and text
    close_app()  # (in the same kernel the twin would share the chat's cells: the same messages)
    _, control = ask("What are my goats called?", chat=twin)
    assert control.usage["cached_tokens"] < first.usage["prompt_tokens"] // 2  # without a cache: all read again


def test_after_a_restart_the_disk_is_read_once_and_the_chat_then_keeps_its_cells(smollm2, ancia_home,
                                                                                monkeypatch):
    from ancia_jupyter.model_manager.disk_caches import DiskCaches

    _, first = ask(TELL)
    settle()
    close_app()
    reads: list[int] = []
    real_load = DiskCaches.load
    monkeypatch.setattr(DiskCaches, "load", lambda self, runtime, chat: (reads.append(chat),
                                                                         real_load(self, runtime, chat))[1])
    _, second = ask("What are my goats called?", chat=first.chat_id)
    _, third = ask("And where is the farm?", chat=first.chat_id)  # at once: nothing saved in between
    assert reads == [first.chat_id]
    assert second.usage["cached_tokens"] >= first.usage["prompt_tokens"]
    assert third.usage["cached_tokens"] >= second.usage["prompt_tokens"]  # from the cells, not the disk again


def test_a_read_ahead_not_run_by_the_next_question_is_dropped(smollm2, ancia_home):
    """A question asked at once reads its turn's opening itself; the read-ahead of the turn before, still
    waiting, is dropped, so it never cuts the chat's cells back to that older turn later."""
    _, first = ask(TELL)
    answer = ancia.chat("Tell me about goats.", chat=first.chat_id, stream=True, tools=False)
    for event in answer:
        if isinstance(event, ev.Token):
            answer.stop()  # no read-ahead of its own: a stopped answer's next turn is not known
    cut = answer.done
    assert cut.status == "stopped"
    settle()
    _, later = ask("What are my goats called?", chat=first.chat_id)
    assert later.usage["cached_tokens"] >= cut.usage["prompt_tokens"]  # the stopped turn's cells are still there


def test_a_follow_up_after_a_pause_finds_its_prompt_read_even_after_a_restart(smollm2, ancia_home):
    """Once a chat has been idle a moment, its cells (and its copy on disk) hold the next user turn's
    opening; the follow-up's own words and the assistant turn's opening are read while its prompt is fitted,
    so the answer reads one token before its first."""
    from ancia_jupyter.app import get_app

    _, first = ask(TELL)
    settle()
    close_app()
    question = "What are my goats called?"
    _, again = ask(question, chat=first.chat_id)
    own = get_app().models.resident.runtime._tokenize(f"{question}<|im_end|>\n<|im_start|>assistant\n")
    assert again.usage["prompt_tokens"] - again.usage["cached_tokens"] == 1 < len(own)


def test_a_follow_up_asked_at_once_finds_the_end_of_the_last_turn_read(smollm2, ancia_home):
    """Right after an answer the worker reads the opening of the chat's next question; a follow-up asked at
    once (a loop of questions in a cell) reads it in the same job if it had not run yet, then its own words
    while its prompt is fitted, so its answer too reads one token before its first."""
    _, first = ask(TELL)
    question = "What are my goats called?"
    _, again = ask(question, chat=first.chat_id)  # no pause: the read-ahead has at most just begun
    assert again.usage["prompt_tokens"] - again.usage["cached_tokens"] == 1
    _, third = ask("And where is the farm?", chat=first.chat_id)
    assert third.usage["prompt_tokens"] - third.usage["cached_tokens"] == 1
    close_app()


def test_a_first_answer_is_read_ahead_after_a_pause_and_a_followed_up_chat_at_once(smollm2, ancia_home,
                                                                                    monkeypatch):
    """A loop of one-off questions (``ancia.chat`` without ``chat=``) never waits behind the read-ahead of the
    chat before: a chat's first answer is read ahead once the model has rested a second. A chat already
    followed up is likely to be again: its next turn's opening is read as soon as the model is free."""
    from ancia_jupyter.model_manager.scheduler import HOUSEKEEPING_AFTER
    from ancia_jupyter.runtimes.llama_cpp import LlamaCppRuntime

    read: list[str] = []  # the first question of each conversation read ahead
    real = LlamaCppRuntime.read_ahead
    monkeypatch.setattr(LlamaCppRuntime, "read_ahead", lambda self, cache, messages, tools, window: (
        read.append(next(m["content"] for m in messages if m["role"] == "user")),
        real(self, cache, messages, tools, window))[1])
    ask("Name a colour.", max_tokens=8)
    _, other = ask("Name a fruit.", max_tokens=8)  # at once, in a new chat: nothing read ahead before it
    assert read == []
    ask("And another one?", chat=other.chat_id, max_tokens=8)
    deadline = time.monotonic() + HOUSEKEEPING_AFTER * 0.8
    while "Name a fruit." not in read and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "Name a fruit." in read and "Name a colour." not in read  # the followed-up chat, without a pause
    settle()
    assert "Name a colour." in read  # the one-off chat too, once the model rested


def test_a_read_ahead_that_fails_leaves_the_next_answer_to_read_its_prompt_itself(smollm2, ancia_home,
                                                                                   monkeypatch):
    """The read-ahead is a guess on the model worker, run at once or inside the next question's job: when it
    fails (here, llama.cpp refusing the batch), the follow-ups read their whole new turn and end as always."""
    from ancia_jupyter.errors import ModelError
    from ancia_jupyter.runtimes.llama_cpp import LlamaCppRuntime

    def refuse(self, cache, messages, tools, window):
        raise ModelError("llama.cpp could not read the prompt")

    monkeypatch.setattr(LlamaCppRuntime, "read_ahead", refuse)
    _, first = ask(TELL, max_tokens=8)
    for question in ("What are my goats called?", "And where is the farm?"):  # claimed, then at once
        text, done = ask(question, chat=first.chat_id, max_tokens=8)
        assert done.status == "complete" and text
        assert done.usage["prompt_tokens"] - done.usage["cached_tokens"] > 1  # the turn's opening read by it


def test_a_question_that_cannot_be_read_early_is_read_by_its_answer(smollm2, ancia_home, monkeypatch):
    """The early read is a guess on the model worker: when it fails (here, llama.cpp refusing the batch), the
    answer reads the question itself and ends as always."""
    from ancia_jupyter.errors import ModelError
    from ancia_jupyter.runtimes.llama_cpp import LlamaCppRuntime

    _, first = ask(TELL)
    settle()
    tried = []

    def refused(self, cache, tokens):
        tried.append(len(tokens))
        raise ModelError("llama.cpp could not read the prompt")

    monkeypatch.setattr(LlamaCppRuntime, "prefill", refused)
    question = "What are my goats called?"
    text, again = ask(question, chat=first.chat_id)
    own = get_app().models.resident.runtime._tokenize(f"{question}<|im_end|>\n<|im_start|>assistant\n")
    assert tried and again.status == "complete" and text
    assert again.usage["prompt_tokens"] - again.usage["cached_tokens"] == len(own)


def test_a_chat_whose_cells_are_on_disk_gives_its_sequence_up_without_a_copy_in_memory(smollm2, ancia_home,
                                                                                      monkeypatch):
    """More chats than sequences: a chat whose file on disk holds just what its sequence holds keeps no
    copy of it in memory when another chat takes the sequence; its next question reads the file again."""
    from ancia_jupyter.model_manager.disk_caches import DiskCaches
    from ancia_jupyter.runtimes.llama_sequences import SEQUENCES

    _, first = ask(TELL)
    settle()
    for i in range(SEQUENCES):  # each new chat takes a sequence: the last one takes the first chat's
        ask(f"Remember the number {i}.")
        settle()
    resident = get_app().models.resident
    cache = resident.caches.memory.get(first.chat_id, (smollm2, id(resident.runtime)))
    assert cache.state is None and not cache.tokens  # nothing of it held in memory
    assert not any(s.owned_by(cache) for s in resident.runtime.context.sequences)
    reads: list[int] = []
    real_load = DiskCaches.load
    monkeypatch.setattr(DiskCaches, "load", lambda self, runtime, chat: (reads.append(chat),
                                                                         real_load(self, runtime, chat))[1])
    _, again = ask("What are my goats called?", chat=first.chat_id)
    assert reads == [first.chat_id] and again.usage["cached_tokens"] >= first.usage["prompt_tokens"]


def test_a_cache_read_back_from_disk_is_the_very_state_the_chat_had(smollm2_gguf, tmp_path):
    """The answer after a restart is the one the chat would have given with its cache still in memory."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_llama_cpp import ask as ask_runtime
    from test_llama_cpp import user

    from ancia_jupyter.runtimes.base import PromptCache
    from ancia_jupyter.runtimes.llama_cpp import LlamaCppRuntime

    before, after = LlamaCppRuntime(), LlamaCppRuntime()
    before.load(smollm2_gguf)
    after.load(smollm2_gguf)
    try:
        cache = PromptCache()
        said, _, _ = ask_runtime(before, user(TELL), cache)
        assert before.save_cache(cache, tmp_path / "chat.kv")
        question = user(TELL) + [{"role": "assistant", "content": said},
                                 {"role": "user", "content": "What are my goats called?"}]
        restored = after.load_cache(tmp_path / "chat.kv")
        assert restored is not None
        text, last, prompt = ask_runtime(after, question, restored)
        assert last.cached_tokens >= len(prompt) - 24  # only the new question (and its turn markers) was read
        assert text == ask_runtime(before, question, cache)[0]  # as with the cache kept in memory
    finally:
        before.unload()
        after.unload()


def test_a_cache_goes_with_its_chat_and_with_an_edit_of_its_history(smollm2, ancia_home):
    _, kept = ask(TELL)
    _, edited = ask("Remember the word PERIWINKLE.")
    _, deleted = ask("Remember the word MARIGOLD.")
    settle()
    assert len(cache_files(ancia_home)) == 3
    ancia.chats.delete(deleted.chat_id)
    question = ancia.chats.history(edited.chat_id)[0]
    ancia.chats.edit_message(edited.chat_id, question["id"], "Remember nothing.")
    names = [p.name for p in cache_files(ancia_home)]
    assert names == [n for n in names if n.startswith(f"{kept.chat_id}-")] and len(names) == 1
    ancia.reset(confirm=True)
    assert cache_files(ancia_home) == []


def test_a_partial_file_left_by_a_kernel_that_died_mid_save_goes_with_its_chat(tiny, ancia_home):
    ancia.models.load()
    with scripted(says("ok")):
        _, done = ask("Hello there.")
    settle()
    [final] = cache_files(ancia_home)
    left = final.with_name(f"{final.name}.99999.partial{final.suffix}")  # as a save cut short leaves it
    left.write_bytes(b"the chat's tokens, half written")
    ancia.chats.delete(done.chat_id)
    assert cache_files(ancia_home) == []


def test_a_chat_deleted_by_another_kernel_while_this_one_saves_leaves_no_cache(tiny, ancia_home, monkeypatch):
    from ancia_jupyter.model_manager.disk_caches import DiskCaches
    from ancia_jupyter.store.database import Store

    ancia.models.load()
    with scripted(says("ok")):
        ask("Remember the word MARIGOLD.")
    other_kernel = Store(get_app().store.path)  # its delete is not heard here
    real_save = DiskCaches.save

    def save_as_the_other_kernel_deletes(self, runtime, chat_id, cache):
        other_kernel.delete_chat(chat_id)  # ... and sweeps the folder, before this kernel's file is there
        return real_save(self, runtime, chat_id, cache)

    monkeypatch.setattr(DiskCaches, "save", save_as_the_other_kernel_deletes)
    settle()
    other_kernel.close()
    assert cache_files(ancia_home) == []


def test_caches_of_chats_gone_are_swept_at_the_next_save(tiny, ancia_home):
    ancia.models.load()
    with scripted(says("ok")):
        _, done = ask("Hello there.")
    settle()
    [kept] = cache_files(ancia_home)
    gone = kept.with_name(f"{done.chat_id + 1000}-{kept.name.split('-', 1)[1]}")  # no such chat
    gone.write_bytes(b"tokens of a chat deleted while its kernel was down")
    with scripted(says("fine")):
        ask("And now?", chat=done.chat_id)
    settle()
    assert [p.name for p in cache_files(ancia_home)] == [kept.name]


def test_a_cache_is_never_used_for_a_model_file_that_changed(smollm2, ancia_home):
    _, first = ask(TELL)
    settle()
    close_app()
    path = ancia.models.info(smollm2)["path"]
    later = time.time() + 5
    os.utime(path, (later, later))  # the same name, another file as far as a cache can tell
    _, again = ask("What are my goats called?", chat=first.chat_id)
    assert again.usage["cached_tokens"] < first.usage["prompt_tokens"] // 2


def test_the_caches_stay_within_their_budget_least_recently_used_first(tiny, ancia_home):
    ancia.models.load()
    with scripted(says("one", "two", "three")):
        chats = [ask(f"Question number {i}. " + "Padding words. " * 60)[1].chat_id for i in range(3)]
    settle()
    sizes = [p.stat().st_size for p in cache_files(ancia_home)]
    assert len(sizes) == 3
    ancia.settings.update(prompt_cache_disk_mb=max(1, (sizes[0] * 2) // 2**20))
    with scripted(says("four")):
        ask("One more question. " + "Padding words. " * 60)
    settle()
    left = cache_files(ancia_home)
    assert sum(p.stat().st_size for p in left) <= max(1, (sizes[0] * 2) // 2**20) * 2**20
    assert not any(p.name.startswith(f"{chats[0]}-") for p in left)  # the oldest went first


def test_none_is_kept_when_the_budget_is_zero(tiny, ancia_home):
    ancia.settings.update(prompt_cache_disk_mb=0)
    ancia.models.load()
    with scripted(says("ok")):
        ask("Hello there.")
    settle()
    assert cache_files(ancia_home) == []


def test_a_database_that_cannot_say_whether_a_chat_is_there_erases_no_cache(tiny, ancia_home, monkeypatch):
    """Locked or unreadable for a moment: the caches are kept (they only save time, but only a chat that is
    gone may take its cache with it), and the answer is not touched."""
    from ancia_jupyter.errors import StoreError
    from ancia_jupyter.store.database import Store

    ancia.models.load()
    with scripted(says("ok")):
        _, done = ask("Hello there.")
    settle()
    [kept] = cache_files(ancia_home)

    real_query = Store._query

    def locked_for_lookups(self, sql, params=()):
        if sql.startswith("SELECT 1 FROM chats"):
            raise StoreError("database is locked")
        return real_query(self, sql, params)

    monkeypatch.setattr(Store, "_query", locked_for_lookups)
    with scripted(says("still here")):
        text, again = ask("And now?", chat=done.chat_id)
    settle()
    assert text == "still here" and again.chat_id == done.chat_id
    assert [p.name for p in cache_files(ancia_home)] == [kept.name]


def test_a_budget_of_zero_erases_the_caches_on_disk_at_once(tiny, ancia_home):
    ancia.models.load()
    with scripted(says("one", "two")):
        chat = ask("Question number 1.")[1].chat_id
        ask("Question number 2.")
    settle()
    assert len(cache_files(ancia_home)) == 2
    ancia.settings.update(prompt_cache_disk_mb=0)  # keep none: those on disk go now, not at some later save
    assert cache_files(ancia_home) == []
    ancia.settings.update(prompt_cache_disk_mb=64)
    with scripted(says("three")):
        ask("Question number 3.", chat=chat)
    settle()
    assert [p.name.split("-")[0] for p in cache_files(ancia_home)] == [str(chat)]


def test_an_mlx_chat_reads_ahead_its_next_turn_too(tiny, ancia_home):
    """On MLX as on llama.cpp: a follow-up asked at once finds the last turn's end read, and the cache on
    disk holds the next turn's opening too, so after a restart as well its answer reads one token."""
    ancia.models.load()
    with scripted(says("First.", "Second.", "First.")):
        _, at_once = ask("Tell me something.")
        _, follow = ask("And more?", chat=at_once.chat_id)
        _, rested = ask("Tell me something.")
        settle()
        close_app()
    with scripted(says("Second.")):
        _, after = ask("And more?", chat=rested.chat_id)
    assert after.usage["prompt_tokens"] == follow.usage["prompt_tokens"]  # the same chat, word for word
    assert follow.usage["prompt_tokens"] - follow.usage["cached_tokens"] == 1
    assert after.usage["prompt_tokens"] - after.usage["cached_tokens"] == 1


@pytest.mark.parametrize("model", ["tiny"])
def test_an_mlx_chat_is_read_from_disk_after_a_restart_too(tiny, ancia_home, model):
    ancia.models.load()
    with scripted(says("First answer.")):
        _, first = ask("Tell me something. " + "Some context here. " * 30)
    settle()
    assert len(cache_files(ancia_home)) == 1 and cache_files(ancia_home)[0].suffix == ".safetensors"
    close_app()
    with scripted(says("Second.")):
        _, again = ask("And more?", chat=first.chat_id)
    assert again.usage["cached_tokens"] >= first.usage["prompt_tokens"] - 1
