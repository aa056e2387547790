"""The ``ancia`` command for plugins, chat search and deleting a model's files: one API call each, one line
per error and a non-zero exit."""

from __future__ import annotations

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plugins_are_listed_installed_switched_updated_and_removed(capsys, monkeypatch):
    monkeypatch.setenv("ANCIA_OFFLINE", "1")  # the shipped registry and wheels need no network
    assert run(capsys, "plugins")[1].startswith("No plugins installed")
    code, out, _ = run(capsys, "plugins", "registry")
    assert code == 0 and "default_registry.json" in out.splitlines()[0]
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["files", "pydoc"]
    assert run(capsys, "plugins", "install", "files") == (
        0, "installed files 1.0.0; tools: files.read, files.search\n", "")
    code, out, _ = run(capsys, "plugins", "list")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["files", "1.0.0", "yes"]
    assert run(capsys, "plugins", "disable", "files")[1] == "disabled files 1.0.0; tools: none\n"
    assert "files.search" not in [t["name"] for t in ancia.tools.list()]
    assert run(capsys, "plugins", "enable", "files")[1] == "enabled files 1.0.0; tools: files.read, files.search\n"
    assert run(capsys, "plugins", "update")[1] == "every plugin is up to date\n"
    assert run(capsys, "plugins", "update", "files")[1] == "every plugin is up to date\n"
    assert run(capsys, "plugins", "uninstall", "files") == (0, "uninstalled files\n", "")
    assert ancia.plugins.list() == []


def test_plugin_mistakes_are_one_line_and_change_nothing(capsys, monkeypatch):
    monkeypatch.setenv("ANCIA_OFFLINE", "1")
    code, out, err = run(capsys, "plugins", "install", "nope")
    assert code == 1 and out == "" and err.startswith("ancia: No plugin 'nope' in the registry")
    assert err.count("\n") == 1
    for action in ("enable", "disable", "uninstall", "update"):
        code, _, err = run(capsys, "plugins", action, "nope")
        assert code == 1 and "'nope' is not installed" in err and err.count("\n") == 1
    assert run(capsys, "plugins", "install", "pydoc")[0] == 0
    code, _, err = run(capsys, "plugins", "install", "pydoc")
    assert code == 1 and "already installed" in err
    with pytest.raises(SystemExit) as exited:
        main(["plugins", "install"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == "ancia: the following arguments are required: id (`ancia plugins install --help` shows how)\n"
    assert [p["id"] for p in ancia.plugins.list()] == ["pydoc"]


def test_chats_search_finds_messages_in_every_chat(capsys):
    from ancia_jupyter.app import get_app

    store = get_app().store
    first = store.create_chat("Pandas questions")
    store.add_message(first["id"], "user", "How do I use groupby with two keys?")
    second = store.create_chat("Plots")
    answer = store.add_message(second["id"], "assistant", "Call groupby first, then plot.")
    code, out, _ = run(capsys, "chats", "search", "groupby")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["chat_id", "chat_title", "role", "message_id", "snippet"]
    assert len(lines) == 3 and any("**groupby**" in line for line in lines)
    assert any(line.split()[0] == str(second["id"]) and str(answer["id"]) in line.split() for line in lines[1:])
    assert run(capsys, "chats", "search", "groupby", "--limit", "1")[1].count("\n") == 2
    assert run(capsys, "chats", "search", "nothing", "here")[1] == "No message matches 'nothing here'.\n"
    code, _, err = run(capsys, "chats", "search", "groupby", "--limit", "0")
    assert code == 1 and err.startswith("ancia: A search limit is") and err.count("\n") == 1


def test_models_rm_says_how_much_space_it_freed(capsys):
    from ancia_jupyter.paths import models_dir

    folder = models_dir() / "qwen2.5-0.5b-instruct"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * (3 * 1024 * 1024 - 2))
    assert ancia.models.cache_size("qwen2.5-0.5b-instruct") == 3 * 1024 * 1024
    assert run(capsys, "models", "rm", "qwen2.5-0.5b-instruct") == (
        0, "qwen2.5-0.5b-instruct: deleted, freed 3.0 MB\n", "")
    assert not folder.exists()
    assert run(capsys, "models", "rm", "qwen2.5-0.5b-instruct")[1] == "qwen2.5-0.5b-instruct: nothing to delete\n"
    code, _, err = run(capsys, "models", "rm", "nope")
    assert code == 1 and err.startswith("ancia: Unknown model 'nope'")
