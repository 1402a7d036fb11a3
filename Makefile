# The two set-up commands for a new machine are `make run` and `make test`;
# both create the virtualenv in .venv/ and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint simulate clean postgres prompts sip-peers loadtest dashboard

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Readable log lines at a terminal; `acd serve` alone writes JSON lines (ACD_LOG_FORMAT).
run: $(STAMP)
	ACD_LOG_FORMAT=$${ACD_LOG_FORMAT:-text} $(BIN)/acd serve

simulate: $(STAMP)
	$(BIN)/acd simulate scenarios/multi_skill.yaml --seed 1

# The PostgreSQL half of the suite needs a server at 127.0.0.1:5432; start the
# machine's cluster when it is installed but not running (CI, fresh sessions).
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  command -v pg_ctlcluster >/dev/null && \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start && \
	  for i in $$(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done; } || \
	  echo "PostgreSQL is not reachable: its tests will skip (and fail under CI=true)"

# The SIP tests drive real peers: SIPp (Debian's sip-tester) and baresip.
sip-peers:
	@sh scripts/install-sip-peers.sh || \
	  echo "SIPp or baresip missing: their tests will skip (and fail under CI=true)"

test: $(STAMP) postgres sip-peers
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/route.py
	$(BIN)/python bench/server.py
	$(BIN)/python bench/media.py
	$(BIN)/python bench/sip.py

# Locust, headless, against a server it starts on loopback (SQLite, a centre of
# 50 agents), for 60 s at 5 calls/s; prints Locust's summary. Options go in
# LOADTEST_ARGS, e.g. make loadtest LOADTEST_ARGS="--seconds 120 --callers 10".
loadtest: $(STAMP)
	$(BIN)/python loadtest/run.py $(LOADTEST_ARGS)

# The IVR's prompts are kept in the repository; this regenerates them from
# ivr/prompts/prompts.yaml (needs espeak-ng and sox: apt-get install espeak-ng sox).
prompts: $(STAMP)
	$(BIN)/python scripts/make_prompts.py

# The Grafana dashboard of the compose stack is written by this script, never by hand.
dashboard: $(STAMP)
	$(BIN)/python scripts/make_dashboard.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check acd tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis
