# Hearth: `make run` starts everything on one machine, `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Upstream OpenStack Heat for the real-Heat tier: its own virtualenv, installed by the tier on first use
# (and again only when the pin in src/openstack_fakecloud/upstream_heat/runner.py changes).
HEAT_VENV ?= .heat-venv
# OpenStack's own tempest suites (conformance/): tempest, heat-tempest-plugin and trove-tempest-plugin in their own
# virtualenv, rebuilt only when conformance/requirements.txt changes. The trove plugin is not on PyPI: it is
# installed editable from a writable copy of the tree in ../shared/conformance (pbr needs PBR_VERSION without .git).
CONF_VENV ?= .conformance-venv
CONF_STAMP := $(CONF_VENV)/.installed
TROVE_PLUGIN_SRC ?= ../shared/conformance/trove-tempest-plugin

.PHONY: run test test-pytest test-heat conformance conformance-update lint bench clean cloud-init-schema browser

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip uninstall --quiet -y hearth 2>/dev/null || true  # the distribution's name before hearth-dbaas
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# cloud-init's own schema checker, for tests/hearth/datastores/test_cloudinit.py (installed before the pytest tier
# runs; the test runs this target itself when run alone): Debian 12's cloud-init package unpacked, not installed,
# under .cache/cloud-init/root, and run as `python -m cloudinit.cmd.main schema --config-file F` by a virtualenv
# holding its Python dependencies.
CLOUDINIT_CACHE := .cache/cloud-init
cloud-init-schema: $(CLOUDINIT_CACHE)/.installed

$(CLOUDINIT_CACHE)/.installed:
	rm -rf $(CLOUDINIT_CACHE) && mkdir -p $(CLOUDINIT_CACHE)
	apt-get update -qq || true  # as root; otherwise the lists already there
	cd $(CLOUDINIT_CACHE) && apt-get download -qq cloud-init
	dpkg -x $(CLOUDINIT_CACHE)/cloud-init_*.deb $(CLOUDINIT_CACHE)/root
	python3 -m venv $(CLOUDINIT_CACHE)/venv
	$(CLOUDINIT_CACHE)/venv/bin/python -m pip install --quiet 'jsonschema<5' pyyaml jinja2 configobj jsonpatch \
		requests oauthlib
	touch $@

# The console's browser tests (tests/hearth/console) drive Debian's headless Chromium through its chromedriver:
# installed from the distribution's packages when missing (as root, or with passwordless sudo); nothing is
# downloaded at test time. Without them the tests skip, except under CI=true, where they fail.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } 2>/dev/null \
		|| { sudo -n apt-get update -qq && sudo -n apt-get install -y -qq chromium chromium-driver >/dev/null; } \
		|| echo "chromium and chromium-driver could not be installed: the console's browser tests will not run"; \
	fi

run: $(STAMP)
	$(VENV)/bin/hearth up

# The two tiers run side by side: both spend most of their time waiting on clouds, so together they take about
# the longer one's time on 2 cores; --output-sync keeps each tier's report in one piece.
test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench conformance
	$(MAKE) --no-print-directory -j2 --output-sync=target test-pytest test-heat

test-pytest: $(STAMP) $(CLOUDINIT_CACHE)/.installed browser
	$(PY) -m pytest

# The real-Heat gate: the engine contract suite with upstream Heat 27 as the orchestration service.
test-heat: $(STAMP)
	FAKECLOUD_HEAT_VENV=$(abspath $(HEAT_VENV)) $(PY) -m pytest tests/upstream_heat

$(CONF_STAMP): conformance/requirements.txt
	test -x $(CONF_VENV)/bin/python || python3 -m venv $(CONF_VENV)
	echo '*' > $(CONF_VENV)/.gitignore
	$(CONF_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CONF_VENV)/bin/python -m pip install --quiet -r conformance/requirements.txt
	rm -rf $(CONF_VENV)/src/trove-tempest-plugin && mkdir -p $(CONF_VENV)/src
	cp -r $(TROVE_PLUGIN_SRC) $(CONF_VENV)/src/trove-tempest-plugin && chmod -R u+w $(CONF_VENV)/src
	PBR_VERSION=0.0.0 $(CONF_VENV)/bin/python -m pip install --quiet -e $(CONF_VENV)/src/trove-tempest-plugin
	touch $(CONF_STAMP)

# Scoped tempest suites against `hearth up` on 127.0.0.1:28779/28780; writes conformance/RESULTS.md and fails when a
# test in conformance/passing.txt no longer passes. CONFORMANCE_SUITES=compute,volume picks suites.
conformance: $(STAMP) $(CONF_STAMP)
	python3 conformance/run.py

# The same run, then passing.txt gains every test that passed (and loses ids that no longer exist).
conformance-update: $(STAMP) $(CONF_STAMP)
	python3 conformance/run.py --update

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench conformance

bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || (apt-get install -y -qq wrk >/dev/null 2>&1 || sudo -n apt-get install -y -qq wrk >/dev/null 2>&1) \
		|| echo "wrk not installed: fakecloud_bench falls back to Python load clients"
	# guests of every fakecloud on a machine share addresses (127.N.0.x:5432): one guest-booting run at a time
	$(if $(shell command -v flock),flock /tmp/hearth-guests.lock) $(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(HEAT_VENV) $(CONF_VENV) conformance/.work conformance/results .hearth build *.egg-info src/*.egg-info
