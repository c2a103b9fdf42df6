# Two commands for a newcomer (see README):
#   make run   install everything, migrate, seed the demo cluster, start the app
#   make test  install everything, run the whole test suite
# With CI=true, `make test` runs the suite twice: on SQLite, then on
# PostgreSQL + Redis (TEST_DATABASE_URL / TEST_REDIS_URL below).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
CI_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
CI_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test install translations translations-update lint debian-packages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

translations: $(VENV)/.installed
	$(BIN)/pybabel compile -d marketplace/translations

# After changing user-visible text: re-extract the template and merge it into each catalog.
translations-update: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _l -k lazy_gettext --no-location \
		--sort-output -o marketplace/translations/messages.pot .
	$(BIN)/pybabel update -N --ignore-obsolete -i marketplace/translations/messages.pot \
		-d marketplace/translations

install: $(VENV)/.installed node_modules/.package-lock.json translations

run: install
	$(FLASK) migrate
	$(FLASK) seed-demo
	$(BIN)/python wsgi.py

lint: install
	$(BIN)/ruff check marketplace tests bench migrations wsgi.py
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python -m mypy

# Browser tests drive Debian's chromium (never a browser downloaded by a tool); the
# scale-out test puts Debian's nginx in front of two app instances.
debian-packages:
	@{ command -v chromium >/dev/null && command -v nginx >/dev/null; } || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -q >/dev/null && \
		apt-get install -y -q chromium nginx-light >/dev/null; } || \
		echo "chromium or nginx missing: install Debian's chromium and nginx-light for those tests"

test: install debian-packages
	@bash tests/run.sh "$(BIN)/python" "$(CI_DATABASE_URL)" "$(CI_REDIS_URL)"
