"""The agents without a service: shellcheck, metadata against the schemas,
install.sh, and the actions that need nothing running."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from congress_ha import timings
from tests.agents.conftest import OCF_ERR_UNIMPLEMENTED, OCF_ROOT, OCF_SUCCESS, SOURCE, need

ROLES = ["api-pe", "datasources"]
# Pacemaker's own OCF 1.1 schema where the installed Pacemaker ships it
# (2.1.7 and later); Pacemaker 2.1.5 does not, and then resource-agents'
# metadata.rng, the schema its own agents are checked against, is the one here.
SCHEMAS = [Path("/usr/share/pacemaker/api/ocf-ra-1.1.rng"),
           Path("/usr/share/resource-agents/metadata.rng")]
DTD_DIR = Path("/usr/share/resource-agents")  # ra-api-1.dtd, as ocf-tester checks it


def metadata(agent: Path) -> str:
    out = subprocess.run([str(agent), "meta-data"], env={**os.environ, "OCF_ROOT": OCF_ROOT},
                         capture_output=True, text=True, check=True)
    return out.stdout


def test_shellcheck_is_clean_for_every_file():
    shellcheck = need("shellcheck")
    files = sorted(str(p) for p in SOURCE.iterdir())
    out = subprocess.run([shellcheck, "-s", "sh", *files], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("role", ROLES)
def test_metadata_validates_against_the_agent_schema(role, agents, tmp_path):
    xmllint = need("xmllint")
    schema = next((s for s in SCHEMAS if s.exists()), None)
    if schema is None:
        pytest.fail(f"no OCF agent schema found among {[str(s) for s in SCHEMAS]}")
    xml = tmp_path / "meta.xml"
    xml.write_text(metadata(agents / role))
    out = subprocess.run([xmllint, "--noout", "--relaxng", str(schema), str(xml)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("role", ROLES)
def test_metadata_is_valid_against_ra_api_dtd(role, agents):
    xmllint = need("xmllint")
    out = subprocess.run([xmllint, "--noout", "--valid", "-"], input=metadata(agents / role),
                         capture_output=True, text=True, cwd=DTD_DIR)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("role", ROLES)
def test_metadata_declares_ocf_1_1_depths_and_unit_timeouts(role, agents):
    xml = metadata(agents / role)
    assert "<version>1.1</version>" in xml
    assert f'<resource-agent name="{role}"' in xml
    depths = re.findall(r'<action name="monitor" depth="(\d+)"', xml)
    assert depths == ["0", "10", "20"]
    for timeout in re.findall(r'timeout="([^"]*)"', xml):
        assert re.fullmatch(r"\d+s", timeout), timeout
    # The timings come from the one table (congress_ha.timings), not the agent.
    ops = timings.OPERATIONS
    assert f'<action name="start" timeout="{ops["start_timeout"].seconds:g}s" />' in xml
    assert f'<action name="stop" timeout="{ops["stop_timeout"].seconds:g}s" />' in xml
    for depth in (0, 10, 20):
        assert (f'<action name="monitor" depth="{depth}" '
                f'timeout="{ops[f"monitor_timeout_{depth}"].seconds:g}s" '
                f'interval="{ops[f"monitor_interval_{depth}"].seconds:g}s" />') in xml
    params = re.findall(r'<parameter name="([^"]+)"', xml)
    assert params == ["config", "node_id", "binary", "ctl", "user", "pid", "log",
                      "additional_parameters"]
    assert 'default="/etc/congress-ha/congress-ha.conf"' in xml
    assert f'default="/var/log/congress-ha/{role}.log"' in xml
    assert f'congress-ha-{role}.pid"' in xml


def test_install_puts_agents_755_and_library_644(agents):
    assert sorted(p.name for p in agents.iterdir()) == ["api-pe", "congress-ha-common.sh",
                                                        "congress-ha-timings.sh",
                                                        "datasources"]
    for name, mode in (("api-pe", 0o755), ("datasources", 0o755),
                       ("congress-ha-common.sh", 0o644), ("congress-ha-timings.sh", 0o644)):
        assert stat.S_IMODE((agents / name).stat().st_mode) == mode, name


@pytest.mark.parametrize("role", ROLES)
def test_unknown_action_is_unimplemented(role, service):
    res = service.agent(role, "promote")
    assert res.rc == OCF_ERR_UNIMPLEMENTED, res


@pytest.mark.parametrize("role", ROLES)
def test_usage_succeeds(role, service):
    res = service.agent(role, "usage")
    assert res.rc == OCF_SUCCESS, res
    assert "start|stop|monitor" in res.stdout
