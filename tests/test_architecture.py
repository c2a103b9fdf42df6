"""The layering rules of DESIGN.md, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import marketplace

PACKAGE = Path(marketplace.__file__).parent
# Modules whose job is to speak HTTP / Socket.IO / CLI; everything else is domain code.
WEB_EDGE = {"__init__.py", "extensions.py", "web.py", "i18n.py", "cli.py", "views.py",
            "auth_views.py", "stripe_views.py", "health.py", "ratelimits.py", "forms.py",
            "handlers.py", "publisher.py", "runner.py", "assets.py", "pwa.py",
            "composer.py",
            "cards.py"}  # jobs/cards.py renders and caches the board's card fragments


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
    if path.parent.name == "api":
        return path.name not in API_DOMAIN
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
