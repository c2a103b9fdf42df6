#!/usr/bin/env bash
# Run the suite on SQLite; with CI=true run it again on PostgreSQL + Redis.
# pytest's exit code 5 ("no tests collected") is a failure here: a suite that
# silently runs nothing must never look green.
set -u
python=$1 pg_url=$2 redis_url=$3
shift 3

# Two pytest-xdist workers by default (this is a 2-core machine; PYTEST_WORKERS=0 runs
# in one process).  Each worker has its own PostgreSQL and Redis database (conftest.py).
workers=${PYTEST_WORKERS:-2}

run_pytest() {
  if [ "$workers" -gt 0 ]; then
    set -- -n "$workers" --dist load "$@"
  fi
  "$python" -m pytest "$@"
  local rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: failing on purpose" >&2
    return 1
  fi
  return "$rc"
}

echo "== tests on SQLite (tests marked redis run in the PostgreSQL + Redis leg)"
(unset TEST_DATABASE_URL TEST_REDIS_URL; run_pytest -m "not redis") || exit 1
"$python" -m ruff check marketplace tests bench wsgi.py || exit 1
# Types: pyproject.toml's [tool.mypy] (default strictness, strict for money and the ledger).
"$python" -m mypy || exit 1
# The layers the build enforces (import contracts in pyproject.toml); the venv's script,
# since importlinter has no `python -m` entry.
"$(dirname "$python")/lint-imports" --no-cache --no-logo || exit 1

if [ "${CI:-}" = "true" ]; then
  echo "== tests on PostgreSQL + Redis"
  TEST_DATABASE_URL=$pg_url TEST_REDIS_URL=$redis_url run_pytest || exit 1
  echo "== benchmarks in smoke mode (they must keep working; numbers come from full runs)"
  for bench in notify_latency booking_contention settlement dashboard push_fanout board idle_phones; do
    "$python" "bench/$bench.py" --smoke >/dev/null || { echo "bench/$bench.py --smoke failed" >&2; exit 1; }
  done
  # Instances behind Debian's nginx, on the leg's PostgreSQL (its own clusters, nothing
  # dropped) and a Redis database no test worker uses.
  "$python" bench/scale_out.py --smoke --database-url "$pg_url" \
    --redis-url "${redis_url%/*}/13" >/dev/null \
    || { echo "bench/scale_out.py --smoke failed" >&2; exit 1; }
fi
