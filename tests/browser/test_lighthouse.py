"""Lighthouse accessibility of the pages crews and coordinators live in stays at 95 or more.

It runs `bench/lighthouse.py --check --categories accessibility` (Lighthouse
from npm, Debian's chromium, mobile mode, logged in as the demo's member and
coordinator) over the job board, a job, the machine page where a slot is
booked, a booking and the month's settlement.

Accessibility only: its audits read the page's structure (names, labels,
contrast, landmarks, tap targets), so a score is the same on a busy machine.
Performance scores come from CPU time measured under simulated throttling and
drop when CI shares its cores; `bench/lighthouse.py --check` gates them by
hand, with the load printed (README, "Accessibility and mobile quality").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
LIGHTHOUSE = ROOT / "node_modules/.bin/lighthouse"
PAGES = ("job board", "job detail", "book a slot", "booking", "settlement")


def test_every_page_scores_at_least_95_for_accessibility_on_a_phone(database_url: str) -> None:
    """On the leg's database (SQLite, or PostgreSQL in CI's second leg), seeded with the demo."""
    missing = [str(p) for p in (Path(CHROMIUM), LIGHTHOUSE) if not p.exists()]
    if missing:
        if IN_CI:
            pytest.fail(f"missing in CI: {', '.join(missing)} (make test installs both)")
        pytest.skip(f"install Debian's chromium and run `npm ci` ({', '.join(missing)})")
    done = subprocess.run(
        [sys.executable, "bench/lighthouse.py", "--check", "--categories", "accessibility",
         "--runs", "1", "--database-url", database_url],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][2:]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == list(PAGES)


def test_no_npm_package_runs_code_at_install() -> None:
    """`npm ci` must never fetch a browser (puppeteer's postinstall does): chromium is
    Debian's.  npm marks every locked package with an install script; there is none."""
    lock = json.loads((ROOT / "package-lock.json").read_text())
    scripted = [name for name, entry in lock["packages"].items() if entry.get("hasInstallScript")]
    assert scripted == []
    assert "node_modules/lighthouse" in lock["packages"]
    assert not any(name.endswith("/puppeteer") for name in lock["packages"])  # only -core
