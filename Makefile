# dataworks developer entry points. `make test` is what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
K8S_VERSION := v1.36.3
K8S_MINOR := 36
GO_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(K8S_MINOR) \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=$(K8S_MINOR)
GO_BUILD := cd test/cluster && CGO_ENABLED=0 go build -trimpath -ldflags "$(GO_LDFLAGS)"
PYTEST_ARGS ?=

# The first command in README: install dataworks (its runtime dependencies only, no
# test or dev extras) and run the quickstart on this machine.
quickstart: $(VENV)/.runtime
	$(BIN)/dataworks run --local examples/quickstart.yaml

.PHONY: quickstart install testcluster kafka crds lint typecheck contracts gotest test bench clean

# What `make test` and development need: the runtime, plus the test and dev extras.
install: $(VENV)/.installed

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed: $(VENV)/.runtime
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $@

# The in-process control plane, the init process of its exec pods, and a
# matching kubectl, built from the pinned
# Kubernetes modules. Go's build cache makes a no-change rebuild take seconds.
testcluster:
	@mkdir -p bin
	$(GO_BUILD) -o ../../bin/testcluster .
	$(GO_BUILD) -o ../../bin/testcluster-podinit ./cmd/testcluster-podinit
	$(GO_BUILD) -o ../../bin/kubectl k8s.io/kubernetes/cmd/kubectl

# The Apache Kafka broker the tests start: its jars from Maven Central (test/kafka/pom.xml),
# run on the machine's JDK in KRaft mode. Fetched again only when the pom changes.
kafka: test/kafka/lib/.fetched

test/kafka/lib/.fetched: test/kafka/pom.xml
	rm -rf test/kafka/lib
	cd test/kafka && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime
	touch $@

# CRD YAML is generated from the pydantic models; a unit test fails on drift.
crds: install
	$(BIN)/python -m dataworks.api.crdgen deploy/crds

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	cd test/cluster && test -z "$$(gofmt -l .)" && go vet ./...

typecheck: install
	$(BIN)/mypy

contracts: install
	$(BIN)/lint-imports

gotest:
	cd test/cluster && CGO_ENABLED=0 go test -trimpath ./...

# Lint, types, import contracts, then every test tier. pytest's exit code 5
# (nothing collected) is reported as a failure, never as a pass.
test: install testcluster kafka lint typecheck contracts gotest
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing the run" >&2; exit 1; fi; \
	exit $$rc

bench: install testcluster
	@set -e; for b in benchmarks/bench_*.py; do m=$$(basename $$b .py); echo "== $$m"; $(BIN)/python -m benchmarks.$$m; done

clean:
	rm -rf bin $(VENV) .mypy_cache .ruff_cache .pytest_cache test/kafka/lib
