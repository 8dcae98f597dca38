# congress-ha: the two commands are `make demo` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
LOCK   := python/requirements.lock

.PHONY: setup test unit integration e2e lint bench demo vagrant-test install uninstall \
	upgrade-deps clean

setup:
	@sh scripts/setup.sh

test: setup lint
	$(PYTEST) tests --durations=25

unit: setup
	$(PYTEST) tests/unit

integration: setup
	$(PYTEST) tests/integration

lint: setup
	$(VENV)/bin/ruff check python tests
	shellcheck -s sh resource-agents/* scripts/*.sh

bench: setup
	$(PY) -m tests.bench.run

demo: setup
	$(PY) -m tests.e2e.demo

e2e: setup
	$(PYTEST) tests/e2e

# Real VMs (libvirt or virtualbox): the same playbook, the same e2e suite.
vagrant-test: setup
	vagrant up
	CONGRESS_HA_E2E_INVENTORY=.vagrant/provisioners/ansible/inventory/vagrant_ansible_inventory \
	CONGRESS_HA_E2E_VAGRANT_DIR=$(CURDIR) $(PYTEST) tests/e2e

install:
	sh resource-agents/install.sh

# Everything the project put outside the checkout (labs, agents, /etc/congress-ha,
# ...); needs the venv to take labs down, hence setup first.
uninstall: setup
	@sh scripts/uninstall.sh

# Move every pinned Python dependency to its newest release allowed by
# python/pyproject.toml, reinstall, and run the tests (docs/dependencies.md).
upgrade-deps: setup
	cd python && ../$(VENV)/bin/pip-compile --quiet --upgrade --extra test \
		--generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links -o requirements.lock pyproject.toml
	@sh scripts/setup.sh
	$(MAKE) test

clean:
	rm -rf bench/results .pytest_cache
