"""The package's floors: a module imports (at module level) only from its own floor or lower ones,
so the folder tree is the architecture and there are no import cycles between floors. Lazy imports
inside functions are allowed only downwards too."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ser_core"
#: Lowest first. The ground floor is the top-level modules; `builtin_plugins` are loaded by name
#: through the plugin manager, so they stand above what they use; the CLI is the roof.
FLOORS = ["", "contract", "plugins", "models", "pipeline", "training", "runs", "operations", "builtin_plugins", "server", "cli"]


def _floor(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("_version", "errors", "settings", "atomic_files"):
        return 0
    if parts[1] == "cli" or parts[1] == "__main__":
        return FLOORS.index("cli")
    return FLOORS.index(parts[1])


def _modules() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def _imports(module: str) -> list[tuple[str, int]]:
    """(imported ser_core module, line) for every import statement, type-checking-only ones aside."""
    path = SRC.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = SRC.parent / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text())
    skip = {
        id(node)
        for top in ast.walk(tree)
        if isinstance(top, ast.If) and "TYPE_CHECKING" in ast.unparse(top.test)
        for node in ast.walk(top)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ser_core") and not node.level:
            if node.module == "ser_core":
                found += [(f"ser_core.{alias.name}", node.lineno) for alias in node.names if alias.name != "__version__"]
            else:
                found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("ser_core")]
    return found


def test_no_module_imports_from_a_floor_above_its_own():
    upward = [
        f"{module}:{line} imports {target} ({FLOORS[_floor(target)] or 'ground'} above {FLOORS[_floor(module)] or 'ground'})"
        for module in _modules()
        if module not in ("ser_core", "ser_core.__main__")  # the lazy public API and `python -m`
        for target, line in _imports(module)
        if _floor(target) > _floor(module)
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("module", [m for m in _modules() if m != "ser_core.__main__"])
def test_every_module_imports_on_its_own(module):
    """In a fresh interpreter, so an import cycle that only a lucky import order hides shows up
    (the Ray engine included: Ray itself is imported only when a run asks for it)."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
