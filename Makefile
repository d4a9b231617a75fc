# AffectWatch — `make demo` runs the whole system on real data; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test test-fast demo broker-start broker-stop bench clean lint

setup: $(STAMP)  ## create .venv, install the package, resolve the Kafka broker jars

# Run a step with its output captured; show the output only if the step fails.
quietly = out=$$(mktemp); if $(2) >"$$out" 2>&1; then rm -f "$$out"; else rc=$$?; echo "setup: $(1) failed:"; cat "$$out"; rm -f "$$out"; exit $$rc; fi

$(STAMP): pyproject.toml tools/kafka/pom.xml
	@command -v java >/dev/null || { echo "Java (JDK 17+) is required for the local Kafka broker: apt-get install -y openjdk-17-jdk-headless"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required to resolve the Kafka jars: apt-get install -y maven"; exit 1; }
	@echo "setup: Python environment in $(VENV) (a few minutes the first time)"
	@test -x $(BIN)/python || { $(call quietly,creating $(VENV),$(PYTHON) -m venv $(VENV)); }
	@$(call quietly,upgrading pip,$(BIN)/pip install -q --disable-pip-version-check --upgrade pip)
	@$(call quietly,installing AffectWatch and its dependencies,$(BIN)/pip install -q --disable-pip-version-check -e '.[test]')
	@echo "setup: Kafka broker jars (Maven)"
	@$(call quietly,resolving the Kafka jars,$(BIN)/affectwatch broker fetch)
	@$(call quietly,migrating the warehouse,$(BIN)/affectwatch warehouse migrate)
	@touch $(STAMP)
	@echo "setup: done ($(BIN)/affectwatch --help)"

# Test files run in TEST_WORKERS processes (pytest-xdist; one file stays in one process, so a module's
# broker, demo run or warehouse is made once). Most integration tests wait on brokers and child processes,
# so two workers fill a 2-core machine; TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2

test: setup  ## the whole suite: unit + integration (real Kafka, DuckLake, SMTP, chromium)
	$(BIN)/python -m pytest -m "" -q -n $(TEST_WORKERS) --dist loadfile --durations=25 tests

test-fast: setup  ## unit tests only
	$(BIN)/python -m pytest -q -m "not slow" tests

demo: setup  ## the whole system on real data: broker, simulator, ingest, forecasts, alerts, email, dashboard
	$(BIN)/affectwatch demo

bench: setup
	$(BIN)/affectwatch bench ingest --messages 200000

broker-start: setup
	$(BIN)/affectwatch broker start
broker-stop:
	$(BIN)/affectwatch broker stop

clean:
	-$(BIN)/affectwatch broker stop
	rm -rf var .pytest_cache
