# Hearth: `make run` starts everything on one machine, `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Upstream OpenStack Heat for the real-Heat tier: its own virtualenv, installed by the tier on first use
# (and again only when the pin in src/fakecloud/upstream_heat/runner.py changes).
HEAT_VENV ?= .heat-venv

.PHONY: run test test-heat lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/hearth up

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest
	$(MAKE) test-heat

# The real-Heat gate: the engine contract suite with upstream Heat 27 as the orchestration service.
test-heat: $(STAMP)
	FAKECLOUD_HEAT_VENV=$(abspath $(HEAT_VENV)) $(PY) -m pytest tests/upstream_heat

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || (apt-get install -y -qq wrk >/dev/null 2>&1 || sudo -n apt-get install -y -qq wrk >/dev/null 2>&1) \
		|| echo "wrk not installed: fakecloud_bench falls back to Python load clients"
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(HEAT_VENV) .hearth build *.egg-info src/*.egg-info
