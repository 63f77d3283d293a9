"""Dependencies point one way (DESIGN.md §3): protocols -> delivery/auth ->
storage/users/mime.  ``storage``, ``users`` and ``mime`` import no protocol
module, and nothing below the protocols imports a protocol server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mailsuite"
SERVERS = ("mailsuite.smtp", "mailsuite.pop3", "mailsuite.imap", "mailsuite.protocol")
LOWER = {
    "storage": (*SERVERS, "mailsuite.delivery", "mailsuite.users", "mailsuite.admin"),
    "users": (*SERVERS, "mailsuite.delivery", "mailsuite.admin"),
    "mime": (*SERVERS, "mailsuite.delivery", "mailsuite.storage", "mailsuite.users"),
    "delivery": ("mailsuite.smtp", "mailsuite.pop3", "mailsuite.imap", "mailsuite.admin"),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(LOWER))
def test_layer_imports_point_down(layer: str) -> None:
    forbidden = LOWER[layer]
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert bad == []
