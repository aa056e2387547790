"""Build the plugins shipped with ancia-jupyter (``plugins/*/``) into wheels, and list them in the default registry.

    python scripts/build_plugins.py           # rewrite ancia_jupyter/plugins/bundled/*.whl and default_registry.json
    python scripts/build_plugins.py --check   # exit 1 when a shipped wheel or its registry entry is stale

A fresh install offers these plugins with no network: the wheels travel inside ancia-jupyter's own wheel and
the default registry points at them by a relative path. The same sources always make the same bytes, so a
test can rebuild them and compare, and the sha256 in the registry cannot drift from the sources: entries in
name order, one fixed timestamp and mode, stored uncompressed (one zlib's deflate is not another's), and
line ends normalised to LF.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
SOURCES = REPO / "plugins"
BUNDLED = REPO / "ancia_jupyter" / "plugins" / "bundled"
REGISTRY = REPO / "ancia_jupyter" / "default_registry.json"
TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say
ENTRY_POINT_GROUP = "ancia_jupyter.plugins"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def projects(sources: Path = SOURCES) -> list[Path]:
    """Every plugin project: a folder of ``plugins/`` with a ``pyproject.toml``, in name order."""
    return sorted(p.parent for p in sources.glob("*/pyproject.toml"))


def contents(project: Path) -> tuple[dict, dict[str, bytes]]:
    """A project's ``pyproject.toml`` and the files of its wheel (name in the wheel -> bytes), RECORD last."""
    config = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    meta = config["project"]
    name, version = meta["name"], meta["version"]
    files: dict[str, bytes] = {}
    for package in config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
        folder = project / package
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
                inner = f"{folder.name}/{path.relative_to(folder).as_posix()}"
                files[inner] = path.read_bytes().replace(b"\r\n", b"\n")
    info = f"{_normal(name)}-{version}.dist-info"
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {meta['description']}"]
    if meta.get("license"):
        lines.append(f"License: {meta['license']}")
    if meta.get("requires-python"):
        lines.append(f"Requires-Python: {meta['requires-python']}")
    lines += [f"Requires-Dist: {d}" for d in meta.get("dependencies", [])]
    files[f"{info}/METADATA"] = ("\n".join(lines) + "\n").encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: ancia-jupyter scripts/build_plugins.py\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    points = meta.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    if not points:
        raise SystemExit(f"{project.name}: no [project.entry-points.{ENTRY_POINT_GROUP!r}] in pyproject.toml")
    files[f"{info}/entry_points.txt"] = (f"[{ENTRY_POINT_GROUP}]\n"
                                         + "".join(f"{k} = {v}\n" for k, v in sorted(points.items()))).encode()
    record = "".join(f"{n},sha256={_digest(d)},{len(d)}\n" for n, d in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    return config, files


def build(project: Path, out: Path) -> tuple[Path, dict]:
    """Write one project's wheel into ``out``; returns it and its registry entry, whose ``wheel_url`` is
    where the wheel is shipped, relative to the default registry."""
    config, files = contents(project)
    meta = config["project"]
    wheel = out / f"{_normal(meta['name'])}-{meta['version']}-py3-none-any.whl"
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=TIMESTAMP)
            info.create_system = 3  # unix, so that the mode below is read as one
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, data)
    plugin = config.get("tool", {}).get("ancia-plugin", {})
    entry = {"id": plugin.get("id", _normal(meta["name"]).replace("_", "-")), "version": meta["version"],
             "description": meta["description"], "network": bool(plugin.get("network", False)),
             "wheel_url": f"{BUNDLED.relative_to(REGISTRY.parent).as_posix()}/{wheel.name}",
             "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}
    return wheel, entry


def registry_with(entries: list[dict], registry: Path = REGISTRY) -> str:
    """The registry document with ``entries`` as its plugins; its name and description stay as they are."""
    document = json.loads(registry.read_text(encoding="utf-8"))
    document["plugins"] = entries
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the shipped files are current")
    args = parser.parse_args(argv)
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            built = [build(p, Path(tmp)) for p in projects()]
            stale = [w.name for w, _ in built if not (BUNDLED / w.name).is_file()
                     or (BUNDLED / w.name).read_bytes() != w.read_bytes()]
            if registry_with([e for _, e in built]) != REGISTRY.read_text(encoding="utf-8"):
                stale.append(REGISTRY.name)
        if stale:
            print(f"stale: {', '.join(stale)}; run python scripts/build_plugins.py", file=sys.stderr)
            return 1
        print("the shipped plugin wheels and the default registry match plugins/")
        return 0
    for old in BUNDLED.glob("*.whl"):
        old.unlink()
    built = [build(p, BUNDLED) for p in projects()]
    REGISTRY.write_text(registry_with([e for _, e in built]), encoding="utf-8")
    for wheel, entry in built:
        print(f"{entry['id']:<8} {wheel.relative_to(REPO)}  {wheel.stat().st_size} bytes  sha256 {entry['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
