"""The import rules of docs/design.md, checked by walking every module's imports.

1. proto, message: standard library only (and proto may use proto).
2. store: its DB driver and store.* only.
3. services: store.api|model|errors, message, config, services.
4. front-ends (server, queue, fetcher, web): proto, services, store.model, config, the
   pure `message` helpers, and themselves; never another front-end.
5. app.py and cli.py may import anything; nothing imports them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "pillarbox"
STDLIB = set(sys.stdlib_module_names)
FRONT_ENDS = ("server", "queue", "fetcher", "web")


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out.append((".".join(["pillarbox", *parts]), path))
    return out


def _is_module(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != "pillarbox":
        return False
    base = SRC.joinpath(*parts[1:])
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            for alias in node.names:
                # `from pkg import module` imports the module, not the package's names.
                if _is_module(f"{name}.{alias.name}"):
                    found.add(f"{name}.{alias.name}")
                else:
                    found.add(name)
    return found


def _allowed(layer: str, sub: str, target: str) -> bool:
    top = target.split(".")[0]
    if top != "pillarbox":
        if top in STDLIB or top == "__future__":
            return True
        return layer not in {"proto", "message"}
    if layer in {"app", "cli", "__main__"}:
        return True
    parts = target.split(".")
    if len(parts) == 1:
        return False
    tlayer = parts[1]
    if tlayer in {"app", "cli", "__main__"}:
        return False
    if layer == "model":
        return tlayer == "model"
    if tlayer == "model":
        return True  # the leaf of plain values every layer shares
    if layer == "rules":
        return tlayer == "rules"
    if tlayer == "rules":
        return layer in {"store", "services", *FRONT_ENDS}
    if layer == "proto":
        return tlayer == "proto"
    if layer == "message":
        return tlayer == "message"
    if layer == "store":
        return tlayer == "store"
    if layer == "services":
        if tlayer == "store":
            return (len(parts) > 2 and parts[2] in {"api", "model", "errors"}) or len(parts) == 2
        return tlayer in {"services", "message", "config", "mailauth"}
    if layer in FRONT_ENDS:
        if tlayer == "store":
            return len(parts) > 2 and parts[2] == "model"
        if tlayer in FRONT_ENDS:
            return tlayer == layer
        return tlayer in {"proto", "services", "config", "message", "log"}
    if layer in {"config", "log", "mailauth"}:
        return tlayer in {layer, "message"} if layer == "mailauth" else tlayer == layer
    return True


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v))
def test_module_respects_layers(module: str, path: Path) -> None:
    """Every import of every module is one its layer may make."""
    parts = module.split(".")
    layer = parts[1] if len(parts) > 1 else "pillarbox"
    if layer == "pillarbox":
        return
    bad = sorted(t for t in _imports(path, module) if not _allowed(layer, "", t))
    assert not bad, f"{module} imports {bad}"


def test_proto_never_imports_io() -> None:
    """The protocol cores stay sans-I/O: no asyncio, socket, ssl, selectors, threading."""
    forbidden = {"asyncio", "socket", "ssl", "selectors", "threading"}
    for module, path in _modules():
        if module.startswith("pillarbox.proto"):
            tops = {t.split(".")[0] for t in _imports(path, module)}
            assert not (tops & forbidden), f"{module} imports {tops & forbidden}"
