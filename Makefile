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
# `make test` spreads the test files over three pytest-xdist workers (a file's tests stay on one worker,
# so its module fixtures start once). Most tests wait on servers, canary intervals and act rather than
# on a core, so three workers suit a 2-core runner. `make test PYTEST_PARALLEL=` runs them one at a time.
PYTEST_PARALLEL ?= -n 3 --dist loadfile

SYSTEM_TOOLS := haproxy prometheus
JAVA_PACKAGE := openjdk-17-jre-headless
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install system-deps demo test lint generate bench clean release

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -e '.[dev,spark,kubernetes]'
	touch $@

install: $(STAMP) system-deps

# The canary tests and the demo drive a real HAProxy and a real Prometheus (Debian/Ubuntu packages);
# validate-data's Spark tests run pyspark in local mode, which needs a Java 17+ runtime.
system-deps:
	@missing="$$(for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || echo $$t; done)"; \
	command -v java >/dev/null || missing="$$missing $(JAVA_PACKAGE)"; \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing with apt-get"; \
	  $(SUDO) mkdir -p /usr/share/man/man1; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/python -m mlcicd.generate --check
	$(BIN)/mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/actionlint $(WORKFLOWS)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions $(ACTIONS)
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/zizmor --offline --config .github/zizmor.yml $(ACTIONS) $(WORKFLOWS) .github/dependabot.yml
	$(BIN)/zizmor --offline --persona pedantic --config .github/zizmor.yml $(ACTIONS) $(WORKFLOWS) .github/dependabot.yml

# Each input's text is declared once, in its stage's `Option(...)`: this rewrites the action.yml inputs,
# their INPUT_* env lines and the docs' Inputs tables from those declarations (lint checks they are current).
generate: $(STAMP)
	$(BIN)/python -m mlcicd.generate

test: lint system-deps
	@$(BIN)/python -m pytest $(PYTEST_PARALLEL); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: check testpaths in pyproject.toml" >&2; fi; exit $$rc

# The example consumer's whole pipeline through act: validate → train (CPU here) → gates → @staging
# → canary on a loopback HAProxy + Prometheus under live traffic → @production. See tests/demo.py.
demo: $(STAMP) system-deps
	$(BIN)/python tests/demo.py --out $(DEMO)

# Speed, memory and decision quality against peers; writes docs/benchmarks.md. QUICK=1 for small sizes.
bench: $(STAMP) system-deps
	$(BIN)/python benchmarks/run.py $(if $(QUICK),--quick)

# Tag a release: the reusable workflows' nested `uses:` stamped with this repository's owner/name
# (REPOSITORY, else the origin remote) and the release ref; tags vX.Y.Z, moves vX. See .ci/release.py.
release:
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=x.y.z [REPOSITORY=owner/name]" >&2; exit 2; }
	$(PYTHON) .ci/release.py $(VERSION) $(if $(REPOSITORY),--repository $(REPOSITORY))

clean:
	rm -rf $(DEMO) mlcicd-reports .pytest_cache .mypy_cache .ruff_cache
