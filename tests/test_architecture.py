"""The layering rules of DESIGN.md, checked on the source itself."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import marketplace

PACKAGE = Path(marketplace.__file__).parent
# Modules whose job is to speak HTTP / Socket.IO / CLI; everything else is domain code.
WEB_EDGE = {"__init__.py", "extensions.py", "web.py", "i18n.py", "cli.py", "views.py",
            "auth_views.py", "stripe_views.py", "health.py", "ratelimits.py", "forms.py",
            "handlers.py", "publisher.py", "runner.py", "assets.py", "pwa.py",
            "composer.py",
            "statements.py",  # ledger/statements.py words a statement for its page and mail
            "cards.py",  # jobs/cards.py renders and caches the board's card fragments
            "terms_inputs.py"}  # clusters/: the agreement forms' per-trade/metric inputs
# Edges whose file name is a domain module's elsewhere (equipment/access.py is domain code).
EDGE_PATHS = {"clusters/exit/access.py"}  # the gate before a former member's requests


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


# The JSON API is an edge like the pages, but for its tables and token rules.
API_DOMAIN = {"models.py", "tokens.py", "__init__.py"}


def _is_edge(path: Path) -> bool:
    if path.relative_to(PACKAGE).as_posix() in EDGE_PATHS:
        return True
    if path.parent.name == "api":
        return path.name not in API_DOMAIN
    if path.parent.name == "views":  # a domain's pages split by idea (equipment/views/)
        return True
    return path.name in WEB_EDGE


def _domain_modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if not _is_edge(p)]


def test_domain_code_never_imports_flask() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in _domain_modules()
                 if {"flask", "flask_login", "flask_babel", "flask_socketio", "flask_wtf"}
                 & _imports(p)]
    assert offenders == []


def test_only_the_stripe_gateway_imports_stripe() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if "stripe" in _imports(p) and p.name != "stripe_gateway.py"]
    assert offenders == []


def test_there_are_domain_services_to_check() -> None:
    names = {p.name for p in _domain_modules()}
    assert {"service.py", "agreements.py", "invites.py", "accounts.py"} <= names


def _layered_modules() -> set[str]:
    """The modules named in the import-linter layers contract (pyproject.toml)."""
    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    [layers] = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers"]
    return {name.strip().strip("()") for layer in layers["layers"]
            for name in layer.replace("|", ":").split(":")}


def test_every_module_sits_in_a_layer() -> None:
    """A module no layer names would escape the contract: `lint-imports` checks only
    the modules (and packages) its layers list, so each new module must be placed."""
    layered = _layered_modules()
    modules = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
               for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    unplaced = sorted(m for m in modules
                      if not any(m == name or m.startswith(name + ".") for name in layered))
    assert unplaced == []
