"""``%ancia search``, ``%ancia models rm`` and what ``%ancia tools`` says of the model, in an in-process IPython."""

from __future__ import annotations

import os

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import ancia_jupyter as ancia
from ancia_jupyter.paths import models_dir

MODEL = "qwen2.5-0.5b-instruct"


@pytest.fixture
def shell():
    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("ancia_jupyter")
    try:
        yield shell
    finally:
        shell.extension_manager.unload_extension("ancia_jupyter")
        InteractiveShell.clear_instance()


def ancia_line(shell, line: str, capsys) -> str:
    shell.run_line_magic("ancia", line)
    return capsys.readouterr().out


def cached_model(size: int) -> os.PathLike:
    """A catalog model's files in the cache, as a download leaves them."""
    folder = models_dir() / MODEL
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "weights.safetensors").write_bytes(b"\1" * (size - 2))
    return folder


# -- %ancia search ------------------------------------------------------------------------------------

def test_search_shows_where_each_match_is_with_the_match_in_bold(shell, capsys):
    from ancia_jupyter.app import get_app

    store = get_app().store
    pandas = store.create_chat("Pandas")
    question = store.add_message(pandas["id"], "user", "How does groupby | agg work?")
    plots = store.create_chat("Plots")
    answer = store.add_message(plots["id"], "assistant", "Use groupby before you plot.")
    store.add_message(plots["id"], "user", "Nothing to see.")
    out = ancia_line(shell, "search groupby", capsys)
    rows = out.splitlines()
    assert rows[0] == "| chat | role | match | message | chat id |"
    assert len(rows) == 4
    assert f"| Pandas | user | How does **groupby** \\| agg work? | {question['id']} | {pandas['id']} |" in rows
    assert f"| Plots | assistant | Use **groupby** before you plot. | {answer['id']} | {plots['id']} |" in rows
    assert ancia_line(shell, 'search "to see"', capsys).count("**") == 4  # both words, each in bold
    assert ancia_line(shell, "search quux", capsys) == "No message in any chat matches 'quux'.\n"


def test_search_without_a_query_is_a_usage_error(shell):
    with pytest.raises(UsageError, match="Say what to look for"):
        shell.run_line_magic("ancia", "search")


# -- %ancia models rm ----------------------------------------------------------------------------------

def test_models_rm_deletes_the_files_and_says_how_much_space_it_freed(shell, capsys):
    folder = cached_model(5 * 1024 * 1024)
    assert ancia.models.cache_size(MODEL) == 5 * 1024 * 1024
    assert ancia_line(shell, f"models rm {MODEL}", capsys) == f"Deleted the files of {MODEL}: freed 5.0 MB.\n"
    assert not folder.exists() and ancia.models.cache_size(MODEL) == 0
    assert ancia_line(shell, f"models rm {MODEL}", capsys) == f"{MODEL} has no downloaded files to delete.\n"


def test_a_link_in_the_cache_counts_as_itself_and_its_target_stays(shell, capsys, tmp_path):
    folder = cached_model(1024)
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(b"\2" * 4 * 1024 * 1024)
    os.symlink(elsewhere, folder / "linked.bin")
    size = ancia.models.cache_size(MODEL)
    assert 1024 <= size < 1024 + 4096
    assert ancia_line(shell, f"models rm {MODEL}", capsys).startswith(f"Deleted the files of {MODEL}: freed 1.")
    assert elsewhere.stat().st_size == 4 * 1024 * 1024


def test_models_rm_mistakes_are_one_line_and_other_words_are_a_question(shell, capsys, monkeypatch):
    with pytest.raises(UsageError, match="Name the model"):
        shell.run_line_magic("ancia", "models rm")
    with pytest.raises(UsageError, match="Unknown model 'nope'"):
        shell.run_line_magic("ancia", "models rm nope")
    asked = []
    magics = shell.magics_manager.registry["AnciaMagics"]
    monkeypatch.setattr(magics, "_ask", lambda prompt, args: asked.append(prompt))
    shell.run_line_magic("ancia", "models rock")
    assert asked == ["models rock"]


# -- %ancia tools and the model's ability -------------------------------------------------------------

def test_tools_says_when_the_picked_model_cannot_call_them(shell, capsys):
    out = ancia_line(shell, "tools", capsys)
    assert out.splitlines()[0] == "| on | tool | what it does | from | available |"
    assert ("smollm2-135m-instruct cannot call tools (its chat template has no tool-calling format), so it "
            "answers without them; `ancia.models.select('qwen2.5-0.5b-instruct')`") in out
    ancia.models.select(MODEL)
    out = ancia_line(shell, "tools", capsys)
    assert "cannot call tools" not in out and out.rstrip().endswith("|")


def test_help_lists_search_and_models_rm(shell, capsys):
    out = ancia_line(shell, "help", capsys)
    assert "| `%ancia search QUERY` |" in out and "| `%ancia models [rm MODEL]` |" in out
