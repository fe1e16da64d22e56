# Countersign: `make run` starts the embedded demo, `make test` runs the suite.
PYTHON ?= python3.12
HOST ?= 127.0.0.1
PORT ?= 8000
TOOLS := .tools
UV := $(TOOLS)/bin/uv
PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
export HOST PORT

.PHONY: install run test lint typecheck migrations-check bench clean

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "Countersign needs Python 3.12 ($(PYTHON) not found; set PYTHON=/path/to/python3.12)"; exit 1; }
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==0.13.9"

.venv/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON) --quiet
	@touch $@

install: .venv/.installed

run: install
	@mkdir -p "$${COUNTERSIGN_VAR_DIR:-var}"
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty
	@echo ""
	@echo "  Countersign is starting at http://$(HOST):$(PORT)/"
	@echo "  Demo logins (user / password): lead / lead (support lead), ops / ops (ops manager),"
	@echo "                                 agent / agent (support agent), owner / owner (workflow owner, admin)"
	@echo "  Pipeline tokens for the demo: $${COUNTERSIGN_VAR_DIR:-var}/demo-tokens.txt   API docs: http://$(HOST):$(PORT)/api/v1/docs"
	@echo "  Press Ctrl-C to stop the web server, the worker and beat."
	@echo ""
	exec env PATH="$(CURDIR)/.venv/bin:$$PATH" COUNTERSIGN_APPLY_PAUSE_SECONDS="$${COUNTERSIGN_APPLY_PAUSE_SECONDS:-1}" \
		.venv/bin/honcho -f Procfile.embedded start -p $(PORT)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache

typecheck: install
	.venv/bin/mypy .

migrations-check: install
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf .venv $(TOOLS) var
