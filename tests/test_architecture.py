"""docs/architecture.md's table of rooms, checked against every import in the package."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "rlsft"
PAGE = Path(__file__).parents[1] / "docs" / "architecture.md"


def allowed_imports() -> dict[str, set[str]]:
    """room -> the rooms it may import, from the page's table (`| room | what it holds | may import |`)."""
    table = PAGE.read_text().split("| room | what it holds | may import |", 1)[1].split("\n\n", 1)[0]
    rooms = {}
    for row in table.strip().splitlines()[1:]:  # after the |---| line
        room, _, may_import = (cell.strip() for cell in row.strip("|").split("|"))
        name = re.fullmatch(r"`(\w+)(?:\.py|/)`", room).group(1)
        rooms[name] = set(re.findall(r"`(\w+)`", may_import))
    return rooms


def imported_rooms(path: Path) -> set[str]:
    """The rooms of rlsft a file imports, anywhere in it (functions and TYPE_CHECKING blocks too)."""
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "rlsft":
                rooms |= {alias.name for alias in node.names}
            elif node.module.startswith("rlsft."):
                rooms.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            rooms |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("rlsft.")}
    return rooms


def test_every_room_imports_only_what_the_architecture_page_allows():
    allowed = allowed_imports()
    found = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in PACKAGE.iterdir()}
    found -= {"__init__", "__pycache__"}
    assert found == set(allowed), "every room of rlsft/ is in the page's table, and only those"
    breaches = []
    for path in sorted(PACKAGE.rglob("*.py")):
        room = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if room == "__init__":
            continue
        for other in imported_rooms(path) - allowed[room] - {room}:
            breaches.append(f"{path.relative_to(PACKAGE.parent)} imports rlsft.{other}")
    assert not breaches, (
        "imports the page does not allow (update docs/architecture.md, or move the code):\n" + "\n".join(breaches)
    )


def test_a_control_run_does_not_import_transformers() -> None:
    # transformers takes a tenth of a training process's start-up; only text runs (a causal LM) need it.
    probe = (
        "import sys, rlsft.cli, rlsft.trainer; print(sorted(m for m in ('transformers', 'vllm') if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PACKAGE.parent, check=True
    )
    assert found.stdout.strip() == "[]"
