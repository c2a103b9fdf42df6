"""Lighthouse on the pages crews and coordinators live in: accessibility and mobile performance.

Why this exists: the product is used on a 360 px phone in the field, with
gloves on and a weak signal, and at a desk by a coordinator settling money.
"Works on my laptop" says nothing about either, so this script asks Google's
Lighthouse (npm `lighthouse`, a dev dependency in package.json) to load the
real pages, logged in as the people who use them, in its default mobile mode:
a Moto G Power sized screen (412 x 823, touch, mobile user agent) and
simulated throttling (150 ms round trips, 1.6 Mbit/s down, CPU 4x slower).
The goal (issue #8) is accessibility >= 95 and performance >= 90 on each page.

What it does:

1. It builds the demo cluster (`marketplace.demo.seed_demo`, the data `flask
   seed-demo` makes: five firms, open jobs, a bid, machines, a booking, last
   month's ledger) in a temporary SQLite file or a loopback `--database-url`,
   gives each machine a phone-sized photo (`phone_photo`), and serves the app
   in its own process behind werkzeug's threaded server, as `python wsgi.py`
   does (`harness.ServerProcess`), CSRF on.
2. It logs in over HTTP as a browser does: the owner of the demo's first firm
   (a member, for the job board, a job, the machine page where a slot is
   booked, and a booking) and the coordinator (who drafts last month, as the
   "Draft" button does, then opens its settlement page).  Each page's address
   is the first link of its kind a user would tap (the board's first job,
   the first machine, the first of "my bookings"), not a hard-coded id.
3. For each page it runs `node_modules/.bin/lighthouse <url>
   --only-categories=performance,accessibility --output=json --chrome-flags=
   "--headless=new --no-sandbox"` with `CHROME_PATH` set to Debian's
   chromium (no browser is ever downloaded) and the login cookie passed with
   `--extra-headers` (a file, so the cookie is not on the command line).  It
   refuses a report whose page ended anywhere but the requested address (a
   login redirect would be measuring the wrong page) or that is not in
   mobile mode.
4. It prints the median score of `--runs` runs per page and category, the
   metrics behind performance (FCP, LCP, TBT, CLS, Speed Index), every
   accessibility audit that failed with the elements concerned, the
   machine's load average before and after, and the versions involved.

Why medians and several runs: simulated throttling multiplies the CPU time
the page really took on this machine, so a busy machine (the development box
has 2 cores shared by several workers) lowers performance scores; Lighthouse's
own advice is the median of several runs.  Accessibility does not depend on
load.  This is why the test suite (`tests/browser/test_lighthouse.py`) gates
accessibility only, and performance is checked here, by hand, with the load
printed next to it.

    .venv/bin/python bench/lighthouse.py --check              # every page, 3 runs each
    .venv/bin/python bench/lighthouse.py --smoke              # the job board, once
    .venv/bin/python bench/lighthouse.py --check --categories accessibility

Exit status: 0 when every page loaded as itself (and, with --check, every
median score measured reaches its threshold: accessibility 95, performance
90); 1 otherwise (the scores are printed whenever every page was measured);
2 on bad arguments or when chromium or Lighthouse is missing; 3 when the hard
overall timeout fires, after which Lighthouse and its chromium are killed (by
process group) and the temporary files removed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import Progress, ServerProcess, Watchdog

ROOT = Path(__file__).resolve().parent.parent
LIGHTHOUSE = ROOT / "node_modules/.bin/lighthouse"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROME_FLAGS = "--headless=new --no-sandbox"
THRESHOLDS = {"accessibility": 95, "performance": 90}
CATEGORIES = tuple(THRESHOLDS)
PAGES = ("job board", "job detail", "book a slot", "booking", "settlement")
RUN_S = 90.0  # the most one Lighthouse run may take before the timeout counts it as hung
METRICS = (("FCP", "first-contentful-paint", 1000, "s"),
           ("LCP", "largest-contentful-paint", 1000, "s"),
           ("TBT", "total-blocking-time", 1, "ms"),
           ("CLS", "cumulative-layout-shift", 1, ""),
           ("SI", "speed-index", 1000, "s"))

say = Progress("lighthouse")


# ------------------------------------------------------------------ the pages


@dataclass
class Page:
    """One page to measure: what it is, where it is, whose cookie opens it."""

    name: str
    path: str
    who: str
    cookie: str


def _cookie_header(http: Any) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def _first_link(http: Any, base: str, path: str, pattern: str) -> str:
    """The first href on page `path` matching `pattern`: the link a user would tap."""
    response = http.get(f"{base}{path}", timeout=harness.LOGIN_TIMEOUT_S)
    response.raise_for_status()
    match = re.search(f'href="({pattern})"', response.text)
    if match is None:
        raise RuntimeError(f"no link like {pattern!r} on {path}: the demo data changed?")
    return match.group(1)


def find_pages(base: str) -> list[Page]:
    """Log in as the demo's first firm owner and its coordinator; the pages they open."""
    from marketplace.demo import COORDINATOR_EMAIL, DEMO_PASSWORD, FIRMS

    member_email = FIRMS[0].email
    member = harness.log_in(base, member_email, DEMO_PASSWORD, csrf=True)
    coordinator = harness.log_in(base, COORDINATOR_EMAIL, DEMO_PASSWORD, csrf=True)
    # The coordinator drafts last month, as the "Draft the settlement" button on
    # /ledger does, so the page shows what a coordinator settles with.
    ledger = coordinator.get(f"{base}/ledger", timeout=harness.LOGIN_TIMEOUT_S)
    action = re.search(r'action="(/ledger/[0-9]{4}-[0-9]{2})/draft"', ledger.text)
    if action is None:
        raise RuntimeError("no 'Draft the settlement' form on /ledger")
    drafted = coordinator.post(f"{base}{action.group(1)}/draft",
                               data={"csrf_token": harness.csrf_token(ledger.text)},
                               allow_redirects=False, timeout=harness.LOGIN_TIMEOUT_S)
    if drafted.status_code != 302:
        raise RuntimeError(f"drafting {action.group(1)} answered HTTP {drafted.status_code}")
    member_cookie = _cookie_header(member)
    return [
        Page("job board", "/jobs", member_email, member_cookie),
        Page("job detail", _first_link(member, base, "/jobs", r"/jobs/[0-9]+"),
             member_email, member_cookie),
        Page("book a slot", _first_link(member, base, "/equipment", r"/equipment/[0-9]+"),
             member_email, member_cookie),
        Page("booking", _first_link(member, base, "/equipment/bookings",
                                    r"/equipment/bookings/[0-9]+"),
             member_email, member_cookie),
        Page("settlement", action.group(1), COORDINATOR_EMAIL, _cookie_header(coordinator)),
    ]


def phone_photo() -> bytes:
    """A 12-megapixel JPEG of about 3.4 MB, what a phone sends (fractal plus sensor noise)."""
    import io

    from PIL import Image

    size = (4032, 3024)
    scene = Image.merge("RGB", (Image.effect_mandelbrot(size, (-2.2, -1.2, 1.0, 1.2), 100),
                                Image.linear_gradient("L").resize(size),
                                Image.radial_gradient("L").resize(size)))
    noise = Image.effect_noise(size, 24)
    buffer = io.BytesIO()
    Image.blend(scene, Image.merge("RGB", (noise, noise, noise)), 0.25).save(
        buffer, "JPEG", quality=90)
    return buffer.getvalue()


def seed(database_url: str, upload_dir: str) -> None:
    """The demo cluster, through the same function `flask seed-demo` calls, with a phone
    photo on every machine (the demo has none, and a photo is the heaviest thing the
    machine and booking pages carry), set by whoever listed it, as the edit form does."""
    from dataclasses import fields

    from sqlmodel import col, select

    from marketplace.clusters.models import User
    from marketplace.db import utcnow
    from marketplace.demo import seed_demo
    from marketplace.equipment import listings
    from marketplace.equipment.models import Equipment
    from marketplace.equipment.photos import store_photo

    sent = phone_photo()
    with harness.world_session(database_url) as session:
        seed_demo(session, harness.SECRET_KEY, utcnow())
        for machine in session.exec(select(Equipment).where(col(Equipment.photo).is_(None))):
            assert machine.id is not None
            hours = tuple(listings.WeeklyHours(w.weekday, w.start_minute, w.end_minute)
                          for w in listings.hours_of(session, machine.id))
            draft = listings.ListingDraft(hours=hours, **{
                f.name: getattr(machine, f.name) for f in fields(listings.ListingDraft)
                if f.name != "hours"})
            lister = session.get(User, machine.listed_by_id)
            assert lister is not None
            listings.update_listing(session, lister, machine.id, draft,
                                    store_photo(sent, Path(upload_dir) / "equipment"))


# ------------------------------------------------------------------ lighthouse


@dataclass
class Result:
    """Every run of one page: scores and metrics per run, failed audits of the last."""

    page: Page
    scores: dict[str, list[int]] = field(default_factory=dict)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def median(self, category: str) -> int | None:
        runs = self.scores.get(category)
        return round(statistics.median(runs)) if runs else None


class Chromiums:
    """Where Lighthouse's chromiums keep their profiles, to find and kill a stray one.

    chrome-launcher starts chromium detached, as the leader of a process group
    of its own, so killing Lighthouse's group on a timeout would leave the
    browser running.  It makes each profile with `mktemp -t` (so under TMPDIR,
    which `env` points here) and writes the browser's pid into it.  `close`
    kills every chromium still named in a profile here and removes them all;
    the watchdog calls it on a timeout, and so does a normal exit.
    """

    def __init__(self, watchdog: Watchdog) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lighthouse-bench-chromium-"))
        watchdog.cleanup.append(self.close)

    def env(self) -> dict[str, str]:
        return {**os.environ, "CHROME_PATH": CHROMIUM, "TMPDIR": str(self.root)}

    def kill(self) -> None:
        for pid_file in self.root.glob("*/chrome.pid"):
            try:
                pid = int(pid_file.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue  # gone already, or the file half-written
            if str(self.root).encode() in cmdline:  # that pid is still our chromium
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def run_lighthouse(url: str, cookie: str, categories: list[str], tmpdir: str,
                   watchdog: Watchdog, chromiums: Chromiums) -> dict[str, Any]:
    """One Lighthouse run of `url` with the login cookie; its JSON report."""
    headers = Path(tmpdir) / "headers.json"
    headers.write_text(json.dumps({"Cookie": cookie}))
    report = Path(tmpdir) / "report.json"
    report.unlink(missing_ok=True)
    program = watchdog.popen(
        [str(LIGHTHOUSE), url, f"--only-categories={','.join(categories)}", "--output=json",
         f"--output-path={report}", f"--chrome-flags={CHROME_FLAGS}",
         f"--extra-headers={headers}", "--quiet", "--no-enable-error-reporting"],
        env=chromiums.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _out, err = program.communicate(timeout=RUN_S)
    except subprocess.TimeoutExpired:
        harness.stop_program(program)
        chromiums.kill()
        raise RuntimeError(f"Lighthouse took more than {RUN_S:.0f} s on {url}") from None
    if program.returncode != 0 or not report.exists():
        raise RuntimeError(f"Lighthouse failed on {url} (status {program.returncode}): "
                           f"{err.decode(errors='replace')[-1500:]}")
    return json.loads(report.read_text())


def problems(report: dict[str, Any], url: str) -> list[str]:
    """Why a report does not measure what was asked (empty when it does)."""
    found = []
    if report.get("runtimeError"):
        found.append(f"Lighthouse error: {report['runtimeError'].get('message')}")
    if report.get("finalDisplayedUrl") != url:
        found.append(f"asked for {url}, ended at {report.get('finalDisplayedUrl')} "
                     "(a login redirect?)")
    settings = report.get("configSettings", {})
    if settings.get("formFactor") != "mobile" or not settings.get("screenEmulation", {}).get(
            "mobile"):
        found.append("not in Lighthouse's mobile mode")
    return found


def failed_audits(report: dict[str, Any], category: str) -> list[str]:
    """The pass/fail audits of `category` that count and failed, with the elements concerned.

    Performance is scored from its metrics alone (printed in the table), so
    this lists what an accessibility score lost points on.
    """
    lines = []
    for ref in report["categories"][category]["auditRefs"]:
        audit = report["audits"][ref["id"]]
        if ref.get("weight", 0) == 0 or audit.get("scoreDisplayMode") != "binary" \
                or audit.get("score") == 1:
            continue
        items = (audit.get("details") or {}).get("items") or []
        nodes = [item["node"].get("selector") or item["node"].get("snippet", "")
                 for item in items if isinstance(item.get("node"), dict)]
        more = f" (+{len(nodes) - 3})" if len(nodes) > 3 else ""
        lines.append(f"{category}/{ref['id']}: {audit['title']}"
                     + (f" -> {', '.join(nodes[:3])}{more}" if nodes else ""))
    return lines


def measure(page: Page, base: str, categories: list[str], runs: int, tmpdir: str,
            watchdog: Watchdog, chromiums: Chromiums, keep: Path | None) -> Result:
    """`runs` Lighthouse runs of one page; raises if a run did not measure that page.

    With `keep`, each full report is saved there (open one in Lighthouse's viewer
    to see every audit and element)."""
    result = Result(page)
    url = f"{base}{page.path}"
    for number in range(runs):
        report = run_lighthouse(url, page.cookie, categories, tmpdir, watchdog, chromiums)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"{page.name.replace(' ', '-')}-{number + 1}.json").write_text(
                json.dumps(report))
        wrong = problems(report, url)
        if wrong:
            raise RuntimeError(f"{page.name}: " + "; ".join(wrong))
        for category in categories:
            score = report["categories"][category]["score"]
            result.scores.setdefault(category, []).append(round(100 * (score or 0)))
        if "performance" in categories:
            for label, audit, scale, _unit in METRICS:
                value = report["audits"][audit].get("numericValue")
                if value is not None:
                    result.metrics.setdefault(label, []).append(value / scale)
        result.findings = [line for c in categories for line in failed_audits(report, c)]
        result.settings = report["configSettings"]
        say(f"{page.name} run {number + 1}/{runs}: " + ", ".join(
            f"{c} {result.scores[c][-1]}" for c in categories))
    return result


# ---------------------------------------------------------------------- report


def below_threshold(results: list[Result], categories: list[str]) -> list[str]:
    """Every page and category whose median score is under its threshold."""
    return [f"{r.page.name}: {c} {r.median(c)} < {THRESHOLDS[c]}"
            for r in results for c in categories
            if (r.median(c) or 0) < THRESHOLDS[c]]


def _setting_line(settings: dict[str, Any]) -> str:
    screen = settings.get("screenEmulation", {})
    throttle = settings.get("throttling", {})
    return (f"{settings.get('formFactor')} form factor, screen {screen.get('width')}x"
            f"{screen.get('height')} @{screen.get('deviceScaleFactor')}x, "
            f"{settings.get('throttlingMethod')} throttling (RTT {throttle.get('rttMs')} ms, "
            f"{throttle.get('throughputKbps', 0) / 1024:.1f} Mbit/s, CPU "
            f"{throttle.get('cpuSlowdownMultiplier')}x)")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _tool_versions() -> str:
    def first_line(args: list[str]) -> str:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
        return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "?"

    return f"Lighthouse {first_line([str(LIGHTHOUSE), '--version'])}, " \
           f"{first_line([CHROMIUM, '--version'])}"


def report(results: list[Result], categories: list[str], runs: int, loads: tuple[str, str],
           database: str) -> None:
    header = ["page", "path", *categories]
    metric_labels = [label for label, *_rest in METRICS] if "performance" in categories else []
    print(f"\nLighthouse, median of {runs} run(s) per page; thresholds: " + ", ".join(
        f"{c} {THRESHOLDS[c]}" for c in categories))
    print("| " + " | ".join(header + metric_labels) + " |")
    print("| " + " | ".join(["---"] * (len(header) + len(metric_labels))) + " |")
    for r in results:
        cells = [r.page.name, f"`{r.page.path}`", *(str(r.median(c)) for c in categories)]
        for label, _audit, _scale, unit in METRICS[:len(metric_labels)]:
            values = r.metrics.get(label)
            value = statistics.median(values) if values else float("nan")
            cells.append(f"{value:.2f} {unit}".strip() if unit != "ms" else f"{value:.0f} ms")
        print("| " + " | ".join(cells) + " |")
    print("\nwho       " + "; ".join(sorted({f"{r.page.name}: {r.page.who}" for r in results})))
    if results:
        print(f"mode      {_setting_line(results[0].settings)}")
    print(f"load      1/5/15-min load average {loads[0]} before, {loads[1]} after")
    print(f"database  {database}")
    print(f"tools     {_tool_versions()}")
    print(f"machine   {harness.machine_line('Flask')}")
    findings = [f"  {r.page.name}: {line}" for r in results for line in r.findings]
    print("\nfailed audits (last run of each page):" if findings
          else "\nno pass/fail audit failed")
    for line in findings:
        print(line)


# ------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a median score is under its threshold "
                             f"({', '.join(f'{c} {t}' for c, t in THRESHOLDS.items())})")
    parser.add_argument("--categories", default=",".join(CATEGORIES),
                        help="comma-separated: accessibility, performance (default both)")
    parser.add_argument("--pages", default=None,
                        help=f"comma-separated subset of: {', '.join(PAGES)} (default all)")
    parser.add_argument("--reports", type=Path, default=None,
                        help="a directory to save every full JSON report in")
    parser.add_argument("--runs", type=int, default=3,
                        help="Lighthouse runs per page; the median counts (1..9, default 3)")
    harness.add_run_options(
        parser, smoke="the job board, one run", timeout=f"60 + {RUN_S:.0f} s per run",
        database_url="a loopback database URL for the demo data "
                     "(default: a temporary SQLite file)", smoke_timeout=120)
    args = parser.parse_args(argv)
    args.categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    if not args.categories or set(args.categories) - set(CATEGORIES):
        parser.error(f"--categories must be some of {', '.join(CATEGORIES)}")
    if args.smoke:
        args.pages, args.runs = args.pages or "job board", 1
    args.pages = [p.strip() for p in (args.pages or ",".join(PAGES)).split(",") if p.strip()]
    if not args.pages or set(args.pages) - set(PAGES):
        parser.error(f"--pages must be some of {', '.join(PAGES)}")
    if not 1 <= args.runs <= 9:
        parser.error("--runs must be 1..9")
    if not Path(CHROMIUM).exists():
        parser.error(f"no chromium at {CHROMIUM}: install Debian's chromium")
    if not LIGHTHOUSE.exists():
        parser.error(f"no {LIGHTHOUSE.relative_to(ROOT)}: run `make install` (npm ci)")
    harness.check_run_options(parser, args, smoke_timeout=120,
                              full_timeout=60 + RUN_S * args.runs * len(args.pages))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = _load()
    with Watchdog(args.timeout, say, "lighthouse-bench") as watchdog:
        tmpdir = watchdog.temp_dir()
        database_url, database = harness.choose_database(args.database_url, tmpdir)
        say("seeding the demo cluster, with a phone photo on each machine")
        seed(database_url, f"{tmpdir}/uploads")
        server = ServerProcess("app", harness.marketplace_app,
                               harness.app_config(database_url,
                                                  UPLOAD_DIR=f"{tmpdir}/uploads"), watchdog)
        chromiums = Chromiums(watchdog)
        try:
            pages = [p for p in find_pages(server.url) if p.name in args.pages]
            results = []
            for page in pages:
                results.append(measure(page, server.url, args.categories, args.runs, tmpdir,
                                       watchdog, chromiums, args.reports))
        except RuntimeError as error:
            watchdog.wait_if_expiring()
            print(f"lighthouse: {error}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    report(results, args.categories, args.runs, (load_before, _load()), database)
    failures = below_threshold(results, args.categories)
    if failures:
        print("\nbelow threshold: " + "; ".join(failures))
    return 1 if args.check and failures else 0


if __name__ == "__main__":
    sys.exit(main())
