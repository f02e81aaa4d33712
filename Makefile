# TradeLedger: two commands on a fresh machine.
#   make demo   create the virtualenv, install, run a demo node (SQLite, solo ordering)
#   make test   install what the tests need (PostgreSQL, etcd, Chromium) and run them all

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
SYSSTAMP := $(VENV)/.system-deps
APT_PACKAGES := postgresql chromium etcd-server etcd-client
DEMO_DIR ?= var/demo
PORT ?= 8700

.PHONY: demo test venv system-deps lint typecheck bench clean node-image

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# System packages: PostgreSQL (tests start their own server as the postgres
# user), etcd (multi-node ordering), Debian's Chromium (browser tests).
$(SYSSTAMP):
	@if [ "$$(id -u)" = "0" ]; then \
	  missing=""; \
	  for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	else \
	  echo "not root: assuming $(APT_PACKAGES) are installed"; \
	fi
	@mkdir -p $(VENV) && touch $(SYSSTAMP)

system-deps: $(SYSSTAMP)

demo: $(STAMP)
	TRADELEDGER_PASSPHRASE=$${TRADELEDGER_PASSPHRASE:-demo-only-passphrase} \
	  $(VENV)/bin/tradeledger demo --data $(DEMO_DIR) --port $(PORT)

test: $(STAMP) $(SYSSTAMP)
	$(VENV)/bin/ruff check ledger node client tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:cacheprovider -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check ledger node client tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/core.py
	$(PY) bench/node.py
	$(PY) bench/epcis.py
	$(PY) bench/rating.py
	$(PY) bench/confidential.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
