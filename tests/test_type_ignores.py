"""Every `type: ignore` in the app names its error code and says why, on the same line.

mypy runs in CI (tests/run.sh, configured in pyproject.toml); an ignore is the one way
to silence it, so each must be narrow (a code, never a bare ignore that hides any
future error on the line) and explained where the next reader meets it.  Persisted
rows' ids and validated form fields have their own helpers (`persisted.id_of`,
`forms.filled`) instead of ignores.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "marketplace"
EXPLAINED = re.compile(r"# type: ignore\[[a-z-]+(, [a-z-]+)*\]  # \S")


def _ignores() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(APP.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and "type: ignore" in token.string:
                found.append((str(path.relative_to(APP.parent)), token.start[0], token.string))
    return found


def test_the_app_has_type_ignores_to_check() -> None:
    assert _ignores(), "the scan found no comments: is APP the package?"


def test_every_type_ignore_names_its_code_and_its_reason() -> None:
    bare = [f"{path}:{line}: {comment}" for path, line, comment in _ignores()
            if not EXPLAINED.match(comment)]
    assert not bare, "type: ignore without [code] and a reason:\n" + "\n".join(bare)
