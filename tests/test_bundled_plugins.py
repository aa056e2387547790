"""The plugins shipped with ancia: rebuilt byte for byte from ``plugins/``, installed from the default registry
with no network, and their tools held to their limits (huge, binary and hidden files, links out, too many
results)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.errors import ToolError

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "ancia_jupyter" / "plugins" / "bundled"


def build_script():
    spec = importlib.util.spec_from_file_location("build_plugins", REPO / "scripts" / "build_plugins.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(tool: str, /, **arguments) -> dict | str:
    text = ancia.tools.call(tool, arguments)
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.fixture
def installed(monkeypatch):
    """Both shipped plugins installed from the default registry, offline."""
    monkeypatch.setenv("ANCIA_OFFLINE", "1")
    for plugin in ("files", "pydoc"):
        ancia.plugins.install(plugin)
    yield
    for plugin in ("files", "pydoc"):
        ancia.plugins.uninstall(plugin)


@pytest.fixture
def notebook(tmp_path, monkeypatch):
    """A notebook folder as the kernel's working directory, and a folder beside it that must stay unseen."""
    folder = tmp_path / "notebook"
    outside = tmp_path / "outside"
    (folder / "sub").mkdir(parents=True)
    outside.mkdir()
    monkeypatch.chdir(folder)
    return folder, outside


# -- shipped and reproducible ------------------------------------------------------------------------------

def test_the_shipped_wheels_rebuild_byte_for_byte_from_their_sources(tmp_path):
    script = build_script()
    registry = json.loads((REPO / "ancia_jupyter" / "default_registry.json").read_text())
    listed = {e["id"]: e for e in registry["plugins"]}
    built = [script.build(project, tmp_path) for project in script.projects()]
    assert {e["id"] for _, e in built} == {"files", "pydoc"} == set(listed)
    for wheel, entry in built:
        shipped = BUNDLED / wheel.name
        assert shipped.read_bytes() == wheel.read_bytes(), f"{wheel.name} is stale: run scripts/build_plugins.py"
        assert listed[entry["id"]] == entry
        assert hashlib.sha256(shipped.read_bytes()).hexdigest() == listed[entry["id"]]["sha256"]
        assert (REPO / "ancia_jupyter" / listed[entry["id"]]["wheel_url"]).resolve() == shipped
    again = [script.build(project, tmp_path / "again") for project in script.projects()]
    assert [w.read_bytes() for w, _ in again] == [w.read_bytes() for w, _ in built]
    assert script.main(["--check"]) == 0


def test_the_wheels_travel_inside_ancia_s_own_wheel_and_their_sources_do_not():
    from hatchling.builders.wheel import WheelBuilder

    paths = [f.distribution_path for f in WheelBuilder(str(REPO)).recurse_included_files()]
    shipped = sorted(p for p in paths if p.startswith("ancia_jupyter/plugins/bundled/"))
    assert shipped == sorted(f"ancia_jupyter/plugins/bundled/{w.name}" for w in BUNDLED.glob("*.whl"))
    assert len(shipped) == 2 and "ancia_jupyter/default_registry.json" in paths
    assert not [p for p in paths if p.startswith("plugins/")]


def test_the_default_registry_offers_them_and_installs_them_offline(monkeypatch):
    monkeypatch.setenv("ANCIA_OFFLINE", "1")
    offered = {e["id"]: e for e in ancia.plugins.registry()}
    assert set(offered) == {"files", "pydoc"}
    assert all(e["installed"] is None and e["network"] is False for e in offered.values())
    assert Path(offered["files"]["wheel_url"]).is_file()
    files = ancia.plugins.install("files")
    pydoc = ancia.plugins.install("pydoc")
    assert files["tools"] == ["files.read", "files.search"] and pydoc["tools"] == ["python.doc", "python.package"]
    rows = {t["name"]: t for t in ancia.tools.list()}
    assert rows["files.search"]["source"] == "plugin:files" and not rows["files.search"]["network"]
    assert [p["id"] for p in ancia.plugins.list()] == ["files", "pydoc"]


def test_a_registry_folder_copied_elsewhere_still_finds_its_wheels(tmp_path, monkeypatch):
    copy = tmp_path / "mirror"
    (copy / "plugins" / "bundled").mkdir(parents=True)
    for wheel in BUNDLED.glob("*.whl"):
        (copy / "plugins" / "bundled" / wheel.name).write_bytes(wheel.read_bytes())
    (copy / "registry.json").write_text((REPO / "ancia_jupyter" / "default_registry.json").read_text())
    monkeypatch.setenv("ANCIA_OFFLINE", "1")
    ancia.plugins.set_registry_url(f"file://{copy / 'registry.json'}")
    assert ancia.plugins.install("pydoc")["version"] == "1.0.0"
    assert all(str(copy) in e["wheel_url"] for e in ancia.plugins.registry())


# -- files.search and files.read -----------------------------------------------------------------------

def test_search_finds_names_and_lines_and_leaves_out_what_it_must(installed, notebook):
    folder, outside = notebook
    (folder / "notes.md").write_text("the needle is here\nnothing\n")
    (folder / "sub" / "code.py").write_text("a = 1\nb = 2\nNEEDLE = 3\n")
    (folder / "needle.txt").write_text("no match inside\n")
    (folder / ".secret").write_text("needle\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("needle\n")
    (folder / "node_modules").mkdir()
    (folder / "node_modules" / "x.js").write_text("needle\n")
    (folder / "data.bin").write_bytes(b"needle\x00\x01\x02" * 100)
    with open(folder / "huge.log", "wb") as big:  # over 2 MB: only its name is looked at
        big.write(b"needle\n" + b"x" * 2_100_000)
    (outside / "private.txt").write_text("needle outside\n")
    os.symlink(outside / "private.txt", folder / "link-out.txt")
    os.symlink(outside, folder / "dir-out")
    os.symlink(folder / "notes.md", folder / "sub" / "link-in.md")  # a link to a file inside is fine
    found = call("files.search", query="needle")
    assert [(m["path"], m["line"]) for m in found["matches"]] == [
        ("needle.txt", None), ("notes.md", 1), ("sub/code.py", 3), ("sub/link-in.md", 1)]
    assert found["matches"][2]["text"] == "NEEDLE = 3" and found["more_matches"] is False
    assert found["skipped"] == {"links_out": 2, "hidden": 2, "too_big": 1, "binary": 1}
    assert "link-out.txt (links out)" in found["skipped_examples"]
    assert not any("outside" in json.dumps(m) for m in found["matches"])
    exact = call("files.search", query="NEEDLE", case_sensitive=True, folder="sub")
    assert [(m["path"], m["line"]) for m in exact["matches"]] == [("sub/code.py", 3)]


def test_search_stops_at_the_most_results_and_says_there_are_more(installed, notebook):
    folder, _ = notebook
    (folder / "many.txt").write_text("hit\n" * 500)
    found = call("files.search", query="hit", max_results=5)
    assert len(found["matches"]) == 5 and found["more_matches"] is True
    assert "more matches" in found["note"]
    with pytest.raises(ToolError, match="max_results"):
        call("files.search", query="hit", max_results=1000)


def test_search_stops_after_the_most_files_and_reads_only_the_head_of_each(installed, notebook, monkeypatch):
    folder, _ = notebook
    for n in range(10):
        (folder / f"f{n}.txt").write_text("word\n")
    (folder / "late.txt").write_text("x\n" * 200_000 + "word\n")  # past the bytes read per file
    search = sys.modules["ancia_files"]
    found = call("files.search", query="word", max_results=100)
    assert "late.txt" not in [m["path"] for m in found["matches"]] and found["files_searched"] == 11
    monkeypatch.setattr(search, "MAX_FILES", 3)
    found = call("files.search", query="word", max_results=100)
    assert found["files_searched"] == 3 and found["note"].startswith("stopped after 3 files")


def test_search_and_read_never_leave_the_folder(installed, notebook):
    folder, outside = notebook
    (outside / "private.txt").write_text("secret\n")
    os.symlink(outside / "private.txt", folder / "link-out.txt")
    os.symlink(outside, folder / "dir-out")
    (folder / ".env").write_text("TOKEN=1\n")
    (folder / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" * 10)
    for path, why in (("../outside/private.txt", "not inside"), (str(outside / "private.txt"), "not inside"),
                      ("link-out.txt", "outside"), ("dir-out/private.txt", "outside"), (".env", "hidden"),
                      ("pic.png", "binary"), ("missing.txt", "not a file")):
        with pytest.raises(ToolError, match=why):
            call("files.read", path=path)
    for folder_arg in ("..", "dir-out", str(outside)):
        with pytest.raises(ToolError):
            call("files.search", query="secret", folder=folder_arg)


def test_read_gives_numbered_lines_and_says_how_to_read_on(installed, notebook):
    folder, _ = notebook
    (folder / "sub" / "poem.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    text = call("files.read", path="sub/poem.txt", start_line=3, max_lines=2)
    assert text.splitlines() == ["sub/poem.txt: lines 3-4 of 10; read on with start_line=5",
                                 "    3  line 3", "    4  line 4"]
    assert call("files.read", path="sub/poem.txt").splitlines()[0] == "sub/poem.txt: lines 1-10 of 10"
    with pytest.raises(ToolError, match="past its end"):
        call("files.read", path="sub/poem.txt", start_line=11)


# -- python.doc and python.package ---------------------------------------------------------------------

def test_doc_gives_the_signature_and_a_cut_docstring(installed):
    dumps = call("python.doc", name="json.dumps", max_chars=100)
    assert dumps["kind"] == "function" and dumps["signature"].startswith("(obj, *")
    assert dumps["doc"].startswith("Serialize ``obj``") and "characters in all)" in dumps["doc"]
    assert len(dumps["doc"]) < 140
    method = call("python.doc", name="collections.OrderedDict.move_to_end")
    assert method["doc"] and method["module"] in (None, "collections")
    module = call("python.doc", name="json")
    assert module["kind"] == "module" and "dumps" in module["members"]
    assert call("python.doc", name="len")["kind"] == "builtin function"
    assert call("python.doc", name="math.pi")["value"].startswith("3.14")


def test_doc_refuses_bad_names_missing_objects_and_modules_that_act_on_import(installed):
    for name, why in (("json.nope", "has no attribute 'nope'"), ("no_such_module_xyz", "No importable module"),
                      ("antigravity", "runs a program"), ("json; import os", "dotted Python name"),
                      ("pip.__main__", "runs a program")):
        with pytest.raises(ToolError, match=why):
            call("python.doc", name=name)
    assert "antigravity" not in sys.modules


def test_package_gives_the_installed_metadata_and_suggests_on_a_miss(installed):
    info = call("python.package", name="PyTest")
    assert info["found"] is True and info["version"] == importlib.metadata.version("pytest")
    assert info["summary"] and "pytest" in info["import_names"]
    miss = call("python.package", name="pyt")
    assert miss["found"] is False and "pytest" in [m["name"].lower() for m in miss["matches"]]
    assert call("python.package", name="zzz-not-installed-anywhere")["matches"] == []
