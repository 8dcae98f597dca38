"""Fixtures of the e2e suite: a deployed 3-node cluster, healthy before each test.

By default the module brings up its own lab (``congress-ha-lab up --nodes 3
--no-cluster --token 1000``), deploys the service with
``scripts/deploy-lab.sh``, loads the workload, and always takes the lab down
at the end.  ``CONGRESS_HA_E2E_INVENTORY`` runs the same tests against an
existing deployed cluster (``make vagrant-test``); ``CONGRESS_HA_E2E_LAB``
against an existing, deployed lab, which is kept.

As root only.  Outside CI a host that cannot run a lab skips; with CI=true
that is a failure.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.lab import DEPLOY_SCRIPT, LAB_BIN, LabDriver, driver_from_env, unique_lab_name

CI = os.environ.get("CI") == "true"
NEEDED = ["ip", "unshare", "nsenter", "sshd", "corosync", "pacemakerd", "crm_mon", "crm",
          "pcs", "curl"]


def _cannot(msg: str) -> None:
    if CI:
        pytest.fail(msg)
    pytest.skip(msg)


def require_lab_host() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("not root")
    problems += [f"missing {b}" for b in NEEDED if not shutil.which(b)]
    if not os.path.exists(LAB_BIN):
        problems.append(f"missing {LAB_BIN}")
    deploy = os.environ.get("CONGRESS_HA_E2E_DEPLOY") or str(DEPLOY_SCRIPT)
    if not os.path.exists(deploy):
        problems.append(f"missing {deploy}")
    if problems:
        _cannot("cannot run the e2e suite here: " + ", ".join(problems))


@pytest.fixture(scope="module")
def cluster():
    """The deployed cluster with the workload loaded; a lab of our own is always removed."""
    driver = driver_from_env()
    if driver is None:
        require_lab_host()
        driver = LabDriver.up(unique_lab_name("e2e"), nodes=3, token=1000, no_cluster=True)
    try:
        if isinstance(driver, LabDriver) and driver.owned:
            driver.deploy(os.environ.get("CONGRESS_HA_E2E_SHELL", "crmsh"))
        c = Cluster(driver)
        c.wait_healthy(timeout=180, flowing=False)
        c.load_workload()
        c.wait_healthy(timeout=60)
        yield c
    finally:
        driver.close()


@pytest.fixture
def healthy(cluster):
    """The cluster, with every node up, online and ready, and actions flowing."""
    cluster.restore()
    cluster.test_started = time.time()
    yield cluster
    cluster.restore()
