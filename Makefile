# One entry point for people and CI. `make demo` runs the pipeline on the bundled example;
# `make test` runs every check CI runs (lint of code and workflows, then pytest).
VENV ?= .venv
PYTHON ?= python3
# On a machine without a local torch wheel, point pip at the CPU builds, e.g.
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlcicd-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
DEMO := examples/.demo
WORKFLOWS = $(wildcard .github/workflows/*.yml tests/workflows/*.yml examples/.github/workflows/*.yml)
ACTIONS = action.yml $(wildcard actions/*/action.yml)

SYSTEM_TOOLS := haproxy prometheus
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install system-deps demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -e '.[dev]'
	touch $@

install: $(STAMP) system-deps

# The canary tests and the demo drive a real HAProxy and a real Prometheus (Debian/Ubuntu packages).
system-deps:
	@missing="$$(for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || echo $$t; done)"; \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing with apt-get"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/actionlint $(WORKFLOWS)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions $(ACTIONS)
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/zizmor --offline --config .github/zizmor.yml $(ACTIONS) $(WORKFLOWS) .github/dependabot.yml

test: lint system-deps
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: check testpaths in pyproject.toml" >&2; fi; exit $$rc

demo: $(STAMP)
	$(BIN)/python examples/make_data.py --out $(DEMO)
	cd examples && ../$(BIN)/mlcicd profile --data .demo/train.parquet --schema schema.yaml --out .demo/reference.json
	@echo "--- validate-data on healthy new data (expect: passed) ---"
	cd examples && ../$(BIN)/mlcicd validate-data --data .demo/current.csv --reference .demo/reference.json --report .demo/current.json
	@echo "--- validate-data on data with planted defects (expect: failed, exit 1) ---"
	cd examples && ../$(BIN)/mlcicd validate-data --data .demo/defects.csv --reference .demo/reference.json --report .demo/defects.json; \
	  rc=$$?; test $$rc -eq 1 || { echo "expected exit 1, got $$rc" >&2; exit 1; }
	@echo "--- train-gpu: the example MLP, tracked in the embedded MLflow store under $(DEMO)/home ---"
	cd examples && MLCICD_HOME=$(CURDIR)/$(DEMO)/home ../$(BIN)/mlcicd train-gpu --require-gpu false --nproc-per-node 1 \
	  --command "$(CURDIR)/$(BIN)/python train.py --data .demo/train.parquet --params params.yaml" --report .demo/train.json
	@echo "--- promote: register the model and point @staging at it ---"
	cd examples && MLCICD_HOME=$(CURDIR)/$(DEMO)/home ../$(BIN)/mlcicd promote --alias staging --reason demo \
	  --model-uri "$$(../$(BIN)/python -c 'import json; print(json.load(open(".demo/train.json"))["model_uri"])')" --report .demo/promote.json
	cd examples && MLCICD_HOME=$(CURDIR)/$(DEMO)/home ../$(BIN)/mlcicd history churn-classifier
	@echo "demo finished: reports in $(DEMO)/, MLflow store in $(DEMO)/home (mlflow ui --backend-store-uri sqlite:///$(DEMO)/home/mlflow.db)"

clean:
	rm -rf $(DEMO) mlcicd-reports .pytest_cache
