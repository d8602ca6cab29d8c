# The two commands a newcomer needs: `make run` and `make test`.
# Each creates the virtualenv on first use and reuses it afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The simulated agencies (land registry, civil registry, bank, postal service) run beside
# the gateway on 127.0.0.1:8101-8104 and stop with it. These are the sandbox's demo
# credentials; a real deployment sets its own in the environment. They reach `gateway run`
# exported into the recipe's environment, never on a command line, where `ps` shows them.
run: export GATEWAY_LAND_REGISTRY_USERNAME := urmia-municipality
run: export GATEWAY_LAND_REGISTRY_PASSWORD := demo-land-registry-secret
run: export GATEWAY_CIVIL_REGISTRY_USERNAME := urmia-municipality
run: export GATEWAY_CIVIL_REGISTRY_PASSWORD := demo-civil-registry-secret
run: export GATEWAY_BANK_USERNAME := urmia-municipality
run: export GATEWAY_BANK_PASSWORD := demo-bank-secret

run: $(STAMP)
	@$(BIN)/python -m sandbox & sandbox=$$!; trap 'kill $$sandbox 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gateway run

# Node tooling (the TypeScript client in clients/, the federation router and composition in
# federation/), pinned by their lock files; skipped with that reason where npm is absent.
NODE_STAMPS := clients/node_modules/.installed federation/node_modules/.installed

%/node_modules/.installed: %/package-lock.json
	@if command -v npm >/dev/null; then \
	  cd $* && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm is absent: $*/ is not installed and its tests are skipped"; fi

test: $(STAMP) $(NODE_STAMPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest
	$(BIN)/python scripts/schema_compat.py
	@if command -v npm >/dev/null; then \
	  (cd clients && npm run --silent codegen && npm run --silent typecheck) \
	  && scripts/compose-federation; \
	else echo "npm is absent: the TypeScript client and the federation composition are not checked"; fi

# Seeds 50,000 parcels, starts the real server and measures it with wrk (see README).
bench: $(STAMP)
	$(BIN)/python bench/run.py --keep-data

clean:
	rm -rf $(VENV) .data .data-bench clients/node_modules clients/generated federation/node_modules
