# congress-ha: the two commands are `make demo` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest

.PHONY: setup test unit integration e2e lint bench demo vagrant-test install clean

setup:
	@sh scripts/setup.sh

test: setup lint
	$(PYTEST) tests

unit: setup
	$(PYTEST) tests/unit

integration: setup
	$(PYTEST) tests/integration

lint: setup
	$(VENV)/bin/ruff check python tests
	shellcheck -s sh resource-agents/*

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

clean:
	rm -rf bench/results .pytest_cache
