# The two commands a newcomer needs: `make run` and `make test`.
# Both build .venv from requirements.lock first (and rebuild it when the lock changes), and
# the web UI from web/package-lock.json (npm ci, then vite build) when its sources change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
WEB := web
NODE_STAMP := $(WEB)/node_modules/.installed-$(shell cksum $(WEB)/package-lock.json | cut -d' ' -f1)
WEB_SOURCES := $(shell find $(WEB)/src -type f) $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json
CHROMIUM ?= /usr/bin/chromium

.PHONY: venv web browser run test lint typecheck web-check bench clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

$(NODE_STAMP): $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@rm -f $(WEB)/node_modules/.installed-* && touch $@

$(WEB)/dist/index.html: $(NODE_STAMP) $(WEB_SOURCES)
	cd $(WEB) && npx vite build --logLevel warn

web: $(WEB)/dist/index.html

# The browser tests drive Debian's chromium (never a downloaded one); a new machine lacks it.
browser:
	@test -x $(CHROMIUM) || { echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

run: $(STAMP) web
	$(BIN)/python -m scripts.serve

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

web-check: $(NODE_STAMP)
	cd $(WEB) && npx tsc --noEmit && npx vitest run --silent

test: lint typecheck web-check web browser
	$(BIN)/python -m pytest

bench: $(STAMP) web browser
	$(BIN)/python -m scripts.bench_store
	$(BIN)/python -m scripts.bench_runtime
	$(BIN)/python -m scripts.bench_api
	$(BIN)/python -m scripts.bench_migration
	$(BIN)/python -m scripts.bench_ui

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis var $(WEB)/node_modules $(WEB)/dist
