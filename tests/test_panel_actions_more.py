"""The panel actions behind the Plugins page, deleting a model's files, search, export and Continue, and the
snapshot's word on where an attached image goes, driven from Python like the UI drives them
(docs/panel-protocol.md): each reply and its one-line errors, against the real store, registry and tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripted import endless, says, scripted
from test_plugins import BROKEN, GREETER_V1, GREETER_V2, Registry, make_wheel

import ancia_jupyter as ancia
from ancia_jupyter.app import get_app
from ancia_jupyter.model_manager import files

CATALOG_MODEL = "smollm2-135m-instruct"


@pytest.fixture
def registry(tmp_path):
    """A registry served on 127.0.0.1 (tests/test_plugins.py), empty until a test publishes a wheel in it."""
    root = tmp_path / "served"
    root.mkdir()
    served = Registry(root)
    (root / "registry.json").write_text(json.dumps({"plugins": []}))
    ancia.plugins.set_registry_url(served.url)
    yield served
    served.close()


def row(page: dict, key: str, plugin_id: str) -> dict | None:
    return next((p for p in page[key] if p["id"] == plugin_id), None)


# -- the Plugins page ----------------------------------------------------------------------------------------

def test_browse_install_update_disable_enable_and_uninstall_a_plugin(client, registry, tmp_path):
    empty = client.ok("plugins")
    assert empty == {"installed": [], "registry": [], "registry_error": None, "registry_location": registry.url}
    registry.publish("greeter", make_wheel(registry.root, "greeter", "1.0.0", {"greeter.py": GREETER_V1},
                                           "greeter:register"), "1.0.0", author="Ana", network=True)
    page = client.ok("plugins")
    offered = row(page, "registry", "greeter")
    assert offered is not None and offered["version"] == "1.0.0" and offered["installed"] is None
    assert offered["network"] is True and offered["description"] == "greeter tools"

    page = client.ok("install_plugin", plugin_id="greeter")
    installed = row(page, "installed", "greeter")
    assert installed is not None and installed["enabled"] and installed["error"] is None
    assert installed["tools"] == ["greeter.hello"] and row(page, "registry", "greeter")["installed"] == "1.0.0"
    assert "greeter.hello" in [t["name"] for t in client.ok("state")["tools"]]
    assert "already installed" in client.error("install_plugin", plugin_id="greeter")

    registry.publish("greeter", make_wheel(registry.root, "greeter", "2.0.0", {"greeter.py": GREETER_V2},
                                           "greeter:register"), "2.0.0")
    assert row(client.ok("plugins"), "registry", "greeter")["version"] == "2.0.0"  # the UI offers "Update to 2.0.0"
    page = client.ok("update_plugin", plugin_id="greeter")
    assert row(page, "installed", "greeter")["version"] == "2.0.0"
    assert ancia.tools.call("greeter.hello", name="Ana") == "hello Ana from v2"

    page = client.ok("disable_plugin", plugin_id="greeter")
    assert row(page, "installed", "greeter")["enabled"] is False
    assert "greeter.hello" not in [t["name"] for t in client.ok("state")["tools"]]
    page = client.ok("enable_plugin", plugin_id="greeter")
    assert row(page, "installed", "greeter")["enabled"] is True

    page = client.ok("uninstall_plugin", plugin_id="greeter")
    assert page["installed"] == [] and row(page, "registry", "greeter")["installed"] is None
    assert "not installed" in client.error("uninstall_plugin", plugin_id="greeter")
    assert "No plugin 'nothing'" in client.error("install_plugin", plugin_id="nothing")
    assert "Missing 'plugin_id'" in client.error("install_plugin")


def test_a_plugin_that_fails_to_load_says_why_and_stays_listed_disabled(client, registry, tmp_path):
    registry.publish("broken", make_wheel(registry.root, "broken", "0.1.0", {"broken.py": BROKEN}, "broken:register"),
                     "0.1.0")
    error = client.error("install_plugin", plugin_id="broken")
    assert "failed to load" in error and "broken on purpose" in error
    listed = row(client.ok("plugins"), "installed", "broken")
    assert listed is not None and listed["enabled"] is False and "broken on purpose" in listed["error"]
    assert "broken on purpose" in client.error("enable_plugin", plugin_id="broken")
    assert client.ok("uninstall_plugin", plugin_id="broken")["installed"] == []


def test_an_unreadable_registry_is_one_line_and_the_installed_plugins_still_show(client, registry, tmp_path):
    registry.publish("greeter", make_wheel(registry.root, "greeter", "1.0.0", {"greeter.py": GREETER_V1},
                                           "greeter:register"), "1.0.0")
    client.ok("install_plugin", plugin_id="greeter")
    (registry.root / "registry.json").write_text("{not json")
    page = client.ok("plugins")
    assert page["registry"] == [] and "not valid JSON" in page["registry_error"]
    assert "\n" not in page["registry_error"]
    assert [p["id"] for p in page["installed"]] == ["greeter"]


# -- deleting a model's files ----------------------------------------------------------------------------------

def fake_download(model_id: str, mb: int = 3) -> list[Path]:
    """Files in the cache as a download leaves them, for both runtimes (the test machine picks one)."""
    gguf = files.gguf_cache_path(model_id)
    mlx = files.cache_path(model_id)
    gguf.parent.mkdir(parents=True, exist_ok=True)
    mlx.mkdir(parents=True, exist_ok=True)
    gguf.write_bytes(b"\0" * mb * files.MB)
    (mlx / "config.json").write_text("{}")
    (mlx / "model.safetensors").write_bytes(b"\0" * mb * files.MB)
    return [gguf, mlx]


def test_delete_a_downloaded_models_files(client):
    state = client.ok("state")
    models = {m["id"]: m for m in state["models"]}
    assert models[CATALOG_MODEL]["status"] == "available" and models[CATALOG_MODEL]["source"] in ("hf", "pypi")
    assert models["tiny"]["source"] == "local"  # your own files: the UI offers no delete
    paths = fake_download(CATALOG_MODEL)
    row_ = next(m for m in client.ok("state")["models"] if m["id"] == CATALOG_MODEL)
    assert row_["status"] == "downloaded" and row_["size_mb"] == 3  # what the confirmation says it frees

    after = client.ok("delete_model_files", model_id=CATALOG_MODEL)
    assert next(m for m in after["models"] if m["id"] == CATALOG_MODEL)["status"] == "available"
    assert not any(p.exists() for p in paths)
    assert "no downloaded files" in client.error("delete_model_files", model_id=CATALOG_MODEL)


def test_your_own_model_files_are_never_deleted(client, tiny_model_dir):
    before = sorted(p.name for p in tiny_model_dir.iterdir())
    client.error("delete_model_files", model_id="tiny")
    assert sorted(p.name for p in tiny_model_dir.iterdir()) == before
    assert "nothing-here" in client.error("delete_model_files", model_id="nothing-here")


# -- search and export -----------------------------------------------------------------------------------------

def seed() -> tuple[int, int]:
    store = get_app().store
    trip = ancia.chats.create("Trip to Lisbon")
    store.add_message(trip.id, "user", "Which pastry should I try in Belém?")
    hit = store.add_message(trip.id, "assistant", "Try the <b>pastel de nata</b>, warm, with cinnamon.")
    other = ancia.chats.create("Groceries")
    store.add_message(other.id, "user", "Milk, eggs and flour.")
    return trip.id, hit["id"]


def test_search_finds_messages_in_every_chat_with_the_match_marked(client):
    trip, hit = seed()
    data = client.ok("search", query="nata")
    assert data["query"] == "nata"
    (result,) = data["results"]
    assert (result["chat_id"], result["message_id"], result["chat_title"]) == (trip, hit, "Trip to Lisbon")
    assert result["role"] == "assistant" and "**nata**" in result["snippet"]
    assert "<b>" in result["snippet"]  # message text comes as it is: the UI shows it as text, never as HTML
    assert len(client.ok("search", query="the", limit=1)["results"]) <= 1
    assert client.ok("search", query="zebra")["results"] == []
    assert "non-empty" in client.error("search", query="  ")
    assert "limit" in client.error("search", query="milk", limit=0)


def test_export_a_chat_as_markdown_and_json(client):
    trip, _ = seed()
    md = client.ok("export_chat", chat_id=trip, format="md")
    assert md["title"] == "Trip to Lisbon" and md["format"] == "md"
    assert md["text"].startswith("# Trip to Lisbon") and "pastel de nata" in md["text"]
    data = client.ok("export_chat", chat_id=trip, format="json")
    document = json.loads(data["text"])
    assert document["chat"]["title"] == "Trip to Lisbon" and len(document["messages"]) == 2
    assert "'md' or 'json'" in client.error("export_chat", chat_id=trip, format="pdf")
    assert client.error("export_chat", chat_id=9999, format="md")


# -- Continue ----------------------------------------------------------------------------------------------------

def test_continue_extends_an_answer_cut_at_the_limit(client):
    ancia.models.set_params("tiny", max_tokens=6)
    client.ok("new_chat")
    with scripted(endless()):
        client.ok("send", text="Tell me a long story")
        (done,) = client.wait_done()
    assert done["finish_reason"] == "length"
    cut = client.ok("state")["messages"][-1]
    assert cut["finish_reason"] == "length" and cut["id"] == done["message_id"] and cut["completion_tokens"] == 6

    ancia.models.set_params("tiny", max_tokens=40)
    with scripted(says(" The end.")):
        assert client.ok("continue", message_id=cut["id"]) == {"chat_id": cut["chat_id"]}
        done = client.wait_done(2)[-1]
    assert done["message_id"] == cut["id"] and done["finish_reason"] == "stop"
    started = [e for e in client.events() if e["type"] == "message_started"]
    assert started[-1]["message_id"] == cut["id"]  # the same message, told again from its start
    grown = client.ok("state")["messages"]
    assert [m["role"] for m in grown] == ["user", "assistant"]
    assert grown[-1]["content"].startswith(cut["content"]) and grown[-1]["content"].endswith("The end.")
    assert grown[-1]["finish_reason"] == "stop"
    assert client.error("continue", message_id=grown[0]["id"])  # a question is not an answer to continue


# -- the attach button -------------------------------------------------------------------------------------------

def test_the_snapshot_says_where_an_image_would_go(client, tiny_model_dir):
    vision = client.ok("state")["vision"]
    assert vision["model"] is None  # the tiny model sees nothing: the attach button says what to pull
    assert "ancia.models.pull(" in vision["hint"] and "\n" not in vision["hint"]
    ancia.models.register("tiny-eyes", str(tiny_model_dir), title="Tiny with eyes", vision=True)
    vision = client.wait_state(lambda s: s["vision"]["model"])["vision"]
    assert vision["model"] == "tiny-eyes" and "tiny-eyes" in vision["hint"]  # images go there; chats stay
