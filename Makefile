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
# BottleCRM beside the demo (`make crm`): its home, and the file holding BOTTLECRM_URL and BOTTLECRM_TOKEN.
CRM_ENV = "$${BOTTLECRM_HOME:-$${COUNTERSIGN_VAR_DIR:-var}/bottlecrm}/env"

.PHONY: install run crm crm-stop test lint typecheck migrations-check bench clean

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
	@echo "  Press Ctrl-C to stop the web server, the workers (one per queue: apply, followups, maintenance) and beat."
	@echo ""
	@# After `make crm`, the web server and the worker reach BottleCRM with the URL and token it wrote.
	if [ -f $(CRM_ENV) ]; then set -a; . $(CRM_ENV); set +a; echo "  BottleCRM: $$BOTTLECRM_URL (from $(CRM_ENV))"; fi; \
	exec env PATH="$(CURDIR)/.venv/bin:$$PATH" COUNTERSIGN_APPLY_PAUSE_SECONDS="$${COUNTERSIGN_APPLY_PAUSE_SECONDS:-1}" \
		.venv/bin/honcho -f Procfile.embedded start -p $(PORT)

# Point the demo's tickets at a local BottleCRM: install and start it (the first time takes minutes),
# copy the demo's customers (as contacts) and tickets (as cases) into it, bind tickets there
# (approvals/demo/bottlecrm-stores.yaml). Then `make run`.
crm: install
	scripts/bottlecrm.sh up
	scripts/bottlecrm.sh worker
	@mkdir -p "$${COUNTERSIGN_VAR_DIR:-var}"
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty
	set -a; . $(CRM_ENV); set +a; \
		$(PY) manage.py bottlecrm_demo && $(PY) manage.py load_stores approvals/demo/bottlecrm-stores.yaml && \
		$(PY) manage.py load_workflows approvals/demo/bottlecrm-workflows.yaml && $(PY) manage.py bottlecrm_demo --proposals
	@echo ""
	@echo "  The demo's tickets are now kept in BottleCRM as cases (its customers are there as their contacts)."
	@echo "  Start Countersign with: make run"
	@echo "  BottleCRM's own screens (its Django admin): scripts/bottlecrm.sh admin prints where and how to sign in."
	@echo "  The emails BottleCRM sends (a case's status change emails its contact): $${BOTTLECRM_HOME:-$${COUNTERSIGN_VAR_DIR:-var}/bottlecrm}/run/worker.log"
	@echo "  make crm-stop puts the demo back on the built-in store and stops BottleCRM."
	@echo ""

crm-stop: install
	$(PY) manage.py load_stores approvals/demo/builtin-stores.yaml
	scripts/bottlecrm.sh stop

# Two pytest-xdist workers, each with a test database, a Redis database and a var folder of its own
# (config/settings/test.py); the tests against BottleCRM take it one at a time (tests/helpers/bottlecrm.py).
# PYTEST_XDIST= runs the suite in one process.
PYTEST_XDIST ?= -n 2
test: install
	$(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

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
