"""Helpers for the cluster tests: rendering, Pacemaker's offline tools, CIB comparison.

Everything here runs the real tools (crm_verify, crm_simulate, pcs, crmsh,
corosync) on files; no cluster is started.  With CI=true a missing tool fails
the test instead of skipping it.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from congress_ha.cluster.model import parse_duration
from congress_ha.cluster.render import render

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "cluster.yaml"
MINIMAL = REPO / "docs" / "examples" / "cluster-minimal.yaml"


def need(tool: str) -> str:
    """The path of ``tool``; skip without it, or fail under CI=true."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (apt-get install pacemaker-cli-utils pcs crmsh " \
                  "corosync)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true: nothing is skipped")
        pytest.skip(message)
    return path


def run(args: list[str], *, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(args, capture_output=True, text=True, env=full_env, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def variant(tmp: Path, name: str, base: Path = EXAMPLE, **changes: object) -> Path:
    """A copy of ``base`` with top-level or dotted keys changed (None removes a key)."""
    data = yaml.safe_load(base.read_text())
    for dotted, value in changes.items():
        keys = dotted.split("__")
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is None:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def render_to(cluster_yaml: Path, out: Path) -> Path:
    render(cluster_yaml, out)
    return out


@pytest.fixture(scope="session")
def example_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_to(EXAMPLE, tmp_path_factory.mktemp("example"))


# --------------------------------------------------------------------------
# A CIB with a live-looking status, for crm_verify and crm_simulate


def with_status(cib_xml: Path, target: Path, online: list[str] | None = None) -> Path:
    """Copy ``cib_xml`` with quorum and every node (or ``online``) up and joined."""
    tree = ET.parse(cib_xml)
    root = tree.getroot()
    nodes = root.findall("./configuration/nodes/node")
    names = online if online is not None else [n.get("uname") for n in nodes]
    root.set("have-quorum", "1")
    root.set("dc-uuid", next(n.get("id") for n in nodes if n.get("uname") == names[0]))
    status = root.find("status")
    status.clear()
    for node in nodes:
        if node.get("uname") in names:
            ET.SubElement(status, "node_state", {
                "id": node.get("id"), "uname": node.get("uname"), "in_ccm": "true",
                "crmd": "online", "join": "member", "expected": "member"})
    tree.write(target)
    return target


class Simulation:
    """One crm_simulate run (``--output-as=xml``), read back as what it planned."""

    def __init__(self, root: ET.Element):
        self.root = root

    def actions(self, op: str | None = None, resource_prefix: str = "") -> list[tuple]:
        """(resource, op, node) of every real resource action in the transition."""
        found = []
        for act in self.root.findall("./transition/rsc_action"):
            rsc = act.get("resource", "")
            if rsc.startswith(resource_prefix) and (op is None or act.get("op") == op):
                found.append((rsc, act.get("op"), act.get("node")))
        return found

    def fenced(self) -> list[str]:
        return [a.get("target") for a in self.root.findall("./transition/fencing_action")]

    def running_on(self, resource: str) -> list[str]:
        """Nodes where ``resource`` (a primitive, or a clone's instances) runs afterwards."""
        status = self.root.find("revised_cluster_status")
        if status is None:
            status = self.root.find("cluster_status")
        nodes: list[str] = []
        for res in status.iter("resource"):
            if res.get("id") == resource and res.get("role") == "Started":
                nodes += [n.get("name") for n in res.findall("node")]
        return sorted(nodes)


def simulate(cib: Path, *events: str, save: Path | None = None) -> Simulation:
    """Run ``crm_simulate -S`` on ``cib`` with synthetic ``events`` (e.g. "--node-fail=node1")."""
    args = [need("crm_simulate"), "--xml-file", str(cib), "--simulate", "--output-as=xml",
            *events]
    if save is not None:
        args += ["--save-output", str(save)]
    proc = run(args)
    return Simulation(ET.fromstring(proc.stdout))


# --------------------------------------------------------------------------
# Comparing configurations built three ways

# Elements whose id is the name users see (kept); every other id is generated
# differently by pcs, crmsh and the template (dropped).
_NAMED = {"primitive", "clone", "group", "rsc_location", "rsc_colocation", "rsc_order"}
_DEFAULTS = {
    "rsc_order": {"kind": "Mandatory", "first-action": "start", "then-action": "start"},
    "rule": {"boolean-op": "and"},
}
_SCORES = {"inf": "INFINITY", "+inf": "INFINITY", "+INFINITY": "INFINITY",
           "-inf": "-INFINITY"}


def _attrs(elem: ET.Element) -> dict[str, str]:
    attrs = dict(elem.attrib)
    if elem.tag not in _NAMED:
        attrs.pop("id", None)
    for key, value in _DEFAULTS.get(elem.tag, {}).items():
        attrs.setdefault(key, value)
    if elem.tag == "op":
        for key in ("interval", "timeout"):
            if key in attrs:
                attrs[key] = f"{parse_duration(attrs[key]).ms}ms"
    if "score" in attrs:
        attrs["score"] = _SCORES.get(attrs["score"], attrs["score"])
    return attrs


def _paths(elem: ET.Element, prefix: str, out: list[str]) -> None:
    attrs = _attrs(elem)
    here = f"{prefix}/{elem.tag}[{','.join(f'{k}={v}' for k, v in sorted(attrs.items()))}]"
    out.append(here)
    for child in elem:
        if isinstance(child.tag, str):
            _paths(child, here, out)


def normalized(cib: Path | str) -> dict[str, list[str]]:
    """The parts of a CIB's configuration that the three renderings set, as sorted paths."""
    root = ET.parse(cib).getroot() if isinstance(cib, Path) else ET.fromstring(cib)
    config = root.find("configuration")
    parts: dict[str, list[str]] = {}
    for section in ("crm_config", "rsc_defaults", "resources", "constraints"):
        elem = config.find(section)
        paths: list[str] = []
        if elem is not None:
            for child in copy.deepcopy(elem):
                _paths(child, "", paths)
        parts[section] = sorted(paths)
    return parts


def crmsh_env() -> dict[str, str]:
    """crmsh crashes without /var/log/crmsh owned by hacluster:haclient (FACTS.md)."""
    log = Path("/var/log/crmsh")
    if not log.is_dir():
        log.mkdir(parents=True, exist_ok=True)
        shutil.chown(log, "hacluster", "haclient")
    return {}


def empty_cib(target: Path) -> Path:
    target.write_text(run([need("cibadmin"), "--empty"]).stdout)
    return target


def build_with_pcs(rendered: Path, target: Path) -> subprocess.CompletedProcess[str]:
    need("pcs")
    need("crm_verify")
    empty_cib(target)
    return run(["sh", str(rendered / "resources.pcs.sh"), "--offline", str(target)])


def build_with_crmsh(rendered: Path, target: Path) -> subprocess.CompletedProcess[str]:
    need("crm")
    env = crmsh_env()
    empty_cib(target)
    # -F: the congress agents are not installed where the tests run, and crmsh
    # refuses an agent without metadata unless forced.
    env["CIB_file"] = str(target)
    return run([need("crm"), "-F", "configure", "load", "update",
                str(rendered / "resources.crm")], env=env)
