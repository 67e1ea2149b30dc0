# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LISTEN ?= 127.0.0.1:5353
ARGS ?=

.PHONY: run test venv clean tools bench scale bytecode

# libyaml's headers (Debian: libyaml-dev) for the C YAML reader, installed when missing and
# apt-get is there; without them the package builds anyway and reads YAML in Python.
$(STAMP): pyproject.toml clusterdns/serve/_udpbatch.c clusterdns/manifests/_yamlstream.c clusterdns/_frozen.c
	@[ -e /usr/include/yaml.h ] || ! command -v apt-get >/dev/null 2>&1 || { echo "installing libyaml-dev"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libyaml-dev >/dev/null; } || true
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The package's bytecode, as a non-editable install would leave it: with PYTHONDONTWRITEBYTECODE
# set (CI's machines set it) every start compiled the package again, 0.1 s before serving.
# compileall rewrites only what changed; a checkout it cannot write to runs as before.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q clusterdns >/dev/null 2>&1 || true

# Debian tools the tests and benchmarks drive, installed only when missing: dig, dnsperf,
# and NSD and Knot as reference servers. policy-rc.d keeps their packages from starting
# daemons on port 53 at install time.
DEBS := dig:bind9-dnsutils dnsperf:dnsperf nsd:nsd knotd:knot kdig:knot-dnsutils
tools:
	@missing=""; for pair in $(DEBS); do command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# dnsperf against clusterdns, NSD and Knot in one run; table and chart in bench/results/.
BENCH_ARGS ?=
bench: $(STAMP) tools bytecode
	$(BIN)/pip install -q matplotlib
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

# The long fuzz campaign: 10 million mutated queries through the handler on every core,
# failures saved to tests/fuzz_corpus/crashes/ (FUZZ_ARGS="--engine atheris" for libFuzzer).
FUZZ_ARGS ?=
.PHONY: fuzz
fuzz: $(STAMP)
	$(BIN)/python bench/fuzz.py $(FUZZ_ARGS)

# The C YAML reader against the Python reading: a million mutated manifests on every core,
# texts that differ saved to tests/fuzz_corpus/yaml/ (replayed by tests/manifests/test_yaml_stream.py).
.PHONY: fuzz-yaml
fuzz-yaml: $(STAMP)
	$(BIN)/python bench/fuzz_yaml.py $(FUZZ_ARGS)

# Bad manifests through the whole pipeline: 100,000 mutated YAML and JSON files on every core,
# each read as an edit, answered, and compared with a fresh load; failures saved to
# tests/fuzz_corpus/manifests/ (replayed by tests/bench/test_fuzz_manifests.py).
.PHONY: fuzz-manifests
fuzz-manifests: $(STAMP)
	$(BIN)/python bench/fuzz_manifests.py $(FUZZ_ARGS)

run: $(STAMP) bytecode
	$(BIN)/clusterdns serve --manifests zones --listen $(LISTEN) --external-zone example.org $(ARGS)

test: $(STAMP) tools bytecode
	$(BIN)/python -m pytest -q $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info clusterdns/*.so clusterdns/serve/*.so clusterdns/manifests/*.so
	find clusterdns -name __pycache__ -prune -exec rm -rf {} +

# The Kubernetes envelope (issue 16): 10,000 Services + 150,000 Pods as Deployments, Pod YAML
# and `kubectl get -o json` Lists; load, RSS, edit latency beside the targets (bench/results/envelope.md).
.PHONY: scale-envelope
scale-envelope: $(STAMP) bytecode
	$(BIN)/python bench/scale.py --envelope
