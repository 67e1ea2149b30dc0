# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LISTEN ?= 127.0.0.1:5353
ARGS ?=

.PHONY: run test venv clean tools

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Debian tools the tests drive (dig); installed only when missing.
tools:
	@command -v dig >/dev/null 2>&1 || { \
	  echo "installing dig (bind9-dnsutils)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bind9-dnsutils >/dev/null; }

run: $(STAMP)
	$(BIN)/clusterdns serve --manifests zones --listen $(LISTEN) $(ARGS)

test: $(STAMP) tools
	$(BIN)/python -m pytest -q $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
