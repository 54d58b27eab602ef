"""The imports of every `pillarbox` module, read from its source (AST), never by importing it.

Shared by `test_layers.py` (may this layer import that?) and `test_import_cycles.py` (do
the modules import each other in a circle?). Reading the source rather than `sys.modules`
sees every import the code can make: module-level ones, imports inside functions (which
run late and so hide cycles and layer breaks from an import-time check) and imports under
`if TYPE_CHECKING:` (a type-only dependency is still a dependency of the design).

Names are resolved the way Python resolves them: relative imports against the importing
module's package, and `from pkg import name` means the submodule `pkg.name` when there is
one, else `pkg` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "pillarbox"


def modules(root: Path = SRC) -> list[tuple[str, Path]]:
    """Every module under `root` as (dotted name, path); a package is named by its
    `__init__.py`."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out.append((".".join([root.name, *parts]), path))
    return out


def is_module(dotted: str, root: Path = SRC) -> bool:
    """Is `dotted` a module or package that exists under `root`?"""
    parts = dotted.split(".")
    if parts[0] != root.name:
        return False
    base = root.joinpath(*parts[1:])
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def import_sites(path: Path, module: str, root: Path = SRC) -> dict[str, int]:
    """What the module at `path` imports, each with the line of its first import."""
    tree = ast.parse(path.read_text(), str(path))
    found: dict[str, int] = {}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            for alias in node.names:
                # `from pkg import module` imports the module, not the package's names.
                sub = f"{name}.{alias.name}"
                found.setdefault(sub if is_module(sub, root) else name, node.lineno)
    return found


def imports(path: Path, module: str, root: Path = SRC) -> set[str]:
    """The dotted names the module at `path` imports (see `import_sites`)."""
    return set(import_sites(path, module, root))
