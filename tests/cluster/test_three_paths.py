"""One cluster model, three paths: `congress-ha-ctl render`, the Ansible role's
action plugin and the lab render the same files from one cluster.yaml, and
refuse the same mistakes with the same lines.

Each cluster.yaml becomes an inventory the way docs/deployment.md has an
operator write one: hosts in the two groups, `ansible_host`, every section
as a `congress_ha_cluster_*` variable. The lab's path is
`congress_ha.lab.cluster.bootstrap_files`, which `congress-ha-lab up` calls
with the lab's own description (one of the cases below).
"""

from __future__ import annotations

import copy
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from congress_ha.cluster.model import ClusterConfigError
from congress_ha.lab import cluster as lab_cluster
from congress_ha.lab.plan import plan_lab
from tests.ansible.conftest import ANSIBLE, REPO, run, tool

from .conftest import EXAMPLE, MINIMAL

VENV = "/opt/congress-ha/venv"
HOST = re.compile(r"^[a-z][a-z0-9-]*$")
# The lab's seed (fencing from the first start) for every case: the seed
# template must render alike under Ansible and under render's Jinja2.
SEED = {"schema": "pacemaker-3.9", "properties": {"dc-deadtime": "2s"}, "fencing": True}

PLAYBOOK = """
- name: The role, then every file the roles write
  hosts: congress_api_pe:congress_datasources
  gather_facts: false
  tasks:
    - name: The cluster description, checked
      block:
        - name: Run congress_ha_cluster
          ansible.builtin.include_role:
            name: congress_ha_cluster
      rescue:
        - name: Keep the mistakes
          ansible.builtin.copy:
            content: "{{ ansible_failed_result.msg }}"
            dest: "{{ out }}/mistakes.txt"
            mode: "0600"
          delegate_to: localhost
          run_once: true
        - name: Stop here
          ansible.builtin.meta: end_play
    - name: Render the cluster's files
      ansible.builtin.template:
        src: "{{ congress_ha_cluster_templates_dir }}/{{ item }}.j2"
        dest: "{{ out }}/{{ item }}"
        mode: "0600"
      vars:
        cluster: "{{ congress_ha_cluster_context.cluster }}"
        source: "{{ congress_ha_cluster_context.source }}"
      loop: "{{ ['corosync.conf', 'resources.pcs.sh', 'resources.crm', 'cib.xml']
                + (['haproxy.cfg'] if congress_ha_cluster_context.cluster.haproxy.enabled
                   else []) }}"
      delegate_to: localhost
      run_once: true
    - name: Write the fence passwords as tasks/fence_secrets.yml installs them
      ansible.builtin.copy:
        content: "{{ item.secret }}\\n"
        dest: "{{ out }}/{{ item.secret_file | basename }}"
        mode: "0600"
      loop: "{{ congress_ha_cluster_context.cluster.fencing.devices
                | rejectattr('secret', 'none') | list }}"
      delegate_to: localhost
      run_once: true
    - name: Render the seed CIB
      ansible.builtin.template:
        src: "{{ congress_ha_cluster_templates_dir }}/seed-cib.xml.j2"
        dest: "{{ out }}/seed-cib.xml"
        mode: "0600"
      vars:
        cluster: "{{ congress_ha_cluster_context.cluster }}"
        source: "{{ congress_ha_cluster_context.source }}"
      delegate_to: localhost
      run_once: true
    - name: Render this node's service configuration
      ansible.builtin.template:
        src: "{{ congress_ha_cluster_templates_dir }}/congress-ha.conf.j2"
        dest: "{{ out }}/congress-ha.{{ node.name }}.conf"
        mode: "0600"
      vars:
        cluster: "{{ congress_ha_cluster_context.cluster }}"
        source: "{{ congress_ha_cluster_context.source }}"
        node: >-
          {{ congress_ha_cluster_context.cluster.nodes
             | selectattr('name', 'equalto',
                          congress_ha_cluster_node_name | default(inventory_hostname))
             | first }}
      delegate_to: localhost
"""


def _lab_description() -> dict[str, Any]:
    plan = plan_lab("chlab", 3, root=Path("/var/tmp/congress-ha-lab"), crypto=True)
    return lab_cluster.description(plan)


def _example(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _bad(change) -> dict[str, Any]:
    data = _example(EXAMPLE)
    change(data)
    return data


def _with(path: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    data = _example(path)
    for key, values in sections.items():
        data.setdefault(key, {}).update(values)
    return data


GOOD = {
    "example": _example(EXAMPLE),
    "minimal": _example(MINIMAL),
    "lab": _lab_description(),
    "optional-keys": _with(MINIMAL, corosync={"consensus": 4000, "knet_pmtud_interval": 10,
                                              "crypto": False},
                           vip={"address": "203.0.113.10"}),
}

# Mistakes an inventory can make as well as a cluster.yaml; (change, a part of
# the line every path must print).
BAD = {
    "node-name-with-a-command": (lambda d: d["nodes"][2].update(name="$(reboot)"),
                                 "nodes[2].name: '$(reboot)' is not valid: a host name"),
    "duplicate-node-names": (lambda d: d["nodes"][2].update(name="node1"),
                             "nodes[2].name: 'node1' is also the name of nodes[0]"),
    "duplicate-nodeids": (lambda d: d["nodes"][1].update(nodeid=1),
                          "nodes[1].nodeid: 1 is also the nodeid of nodes[0]"),
    "token-too-short": (lambda d: d["corosync"].update(token=50),
                        "corosync.token: 50 is out of range; allowed 100..600000 ms"),
    "consensus-below-1.2-token": (lambda d: d["corosync"].update(consensus=3000),
                                  "corosync.consensus: 3000 ms is below 1.2 x token"),
    "pmtud-interval-of-zero": (lambda d: d["corosync"].update(knet_pmtud_interval=0),
                               "corosync.knet_pmtud_interval: 0 is out of range"),
    "unknown-corosync-key": (lambda d: d["corosync"].update(tokn=1),
                             "corosync.tokn: unknown key; did you mean 'token'?"),
    "peer-timeout-below-two-heartbeats": (
        lambda d: d["service"].update(peer_timeout=0.4),
        "service.peer_timeout: peer_timeout 0.4 s is less than twice"),
    "stickiness-ties-the-preference": (
        lambda d: d["resources"].update(datasources_stickiness=100),
        "resources.datasources_stickiness: equals preferred_score (100)"),
    "a-url-with-a-password-is-not-repeated": (
        lambda d: d.update(transport_url="congress:s3cret@203.0.113.2:5672"),
        "transport_url: is not a URL"),
    "fake-transport": (lambda d: d.update(transport_url="fake://"),
                       "transport_url: fake:// is in-process only"),
    "fencing-for-a-node-that-is-not-there": (
        lambda d: d["fencing"]["nodes"].update(node9={"ip": "198.51.100.19"}),
        "fencing.nodes.node9: is not the name of a node in nodes"),
    "vip-on-a-node-address": (lambda d: d["vip"].update(address="203.0.113.11"),
                              "vip.address: 203.0.113.11 is a node's own address"),
    "preferred-node-without-the-role": (
        lambda d: d.update(datasources_preferred_node="node3"),
        "datasources_preferred_node: 'node3' does not have the role datasources"),
    "noauth-in-a-cluster": (lambda d: d["service"].update(auth_strategy="noauth"),
                            "service.auth_strategy: noauth would leave the API open"),
    "service-user-with-a-command": (lambda d: d["service"].update(user="$(id)"),
                                    "service.user: '$(id)' is not valid: a system user"),
    "tls-bus-on-the-plain-port": (
        lambda d: d.update(transport_url="rabbit://congress:x@203.0.113.2:5672/"),
        "transport_url: tls.bus is on, but 203.0.113.2:5672 is not on RabbitMQ's TLS port"),
    "tls-api-without-a-key": (lambda d: d["tls"].pop("key_file"),
                              "tls.key_file: missing for node1, node2, node3: tls.api is on"),
    "tls-with-a-relative-ca": (lambda d: d["tls"].update(ca_file="ca.pem"),
                               "tls.ca_file: 'ca.pem' must be an absolute path"),
    "tls-sslmode-given-twice": (
        lambda d: d.update(database_connection="postgresql://c:x@203.0.113.2/c?sslmode=require"),
        "database_connection: sets sslmode while tls.database is on"),
    "three-at-once": (lambda d: (d["corosync"].update(token="fast"),
                                 d["service"].update(auth_strategy="ldap"),
                                 d["resources"]["monitor"]["api_pe"].update(depth=5)),
                      "corosync.token: must be an integer ms"),
}
CASES = {**{name: data for name, data in GOOD.items()},
         **{name: _bad(change) for name, (change, _) in BAD.items()}}


def deployed(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as the roles deploy it: the agents' binary and ctl in the venv."""
    data = copy.deepcopy(data)
    data.setdefault("service", {}).setdefault("binary", f"{VENV}/bin/congress-ha-server")
    data["service"].setdefault("ctl", f"{VENV}/bin/congress-ha-ctl")
    return data


def as_inventory(data: dict[str, Any]) -> dict[str, Any]:
    """cluster.yaml as the inventory docs/deployment.md describes."""
    groups: dict[str, dict[str, Any]] = {"congress_api_pe": {}, "congress_datasources": {}}
    for i, node in enumerate(data["nodes"]):
        name = node["name"]
        host = name if HOST.match(name) and all(name not in g for g in groups.values()) \
            else f"host{i}"
        hostvars: dict[str, Any] = {"ansible_host": node["address"]}
        if host != name:
            hostvars["congress_ha_cluster_node_name"] = name
        if "nodeid" in node:
            hostvars["congress_ha_cluster_nodeid"] = node["nodeid"]
        for role, group in (("api-pe", "congress_api_pe"),
                            ("datasources", "congress_datasources")):
            if role in node["roles"]:
                groups[group][host] = hostvars
    # The role orders the nodes api-pe first: the cases keep that order.
    order = list(groups["congress_api_pe"]) + [h for h in groups["congress_datasources"]
                                               if h not in groups["congress_api_pe"]]
    assert len(order) == len(data["nodes"]), "a node is in neither group"
    variables: dict[str, Any] = {"congress_ha_cluster_venv": VENV}
    for key in ("datasources_preferred_node", "transport_url", "database_connection",
                "vip", "corosync", "fencing", "resources", "tls"):
        if key in data:
            variables[f"congress_ha_cluster_{key}"] = data[key]
    variables["congress_ha_cluster_name"] = data["cluster_name"]
    if "haproxy" in data:  # {} in cluster.yaml is enabled; in the inventory, none
        variables["congress_ha_cluster_haproxy"] = data["haproxy"] or {"enabled": True}
    service = {k: v for k, v in data.get("service", {}).items()
               if not (k in ("binary", "ctl") and v.startswith(VENV))}
    if service:
        variables["congress_ha_cluster_service"] = service
    return {"all": {"vars": variables,
                    "children": {g: {"hosts": hosts} for g, hosts in groups.items()}}}


def _render(path: Path, out: Path) -> list[str]:
    """`congress-ha-ctl render`: its mistakes (the summary line left out), or []."""
    proc = run([tool("congress-ha-ctl"), "render", "--cluster", str(path), "--out", str(out)],
               check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 2), proc.stderr
    return proc.stderr.splitlines()[:-1] if proc.returncode else []


def _ansible(data: dict[str, Any], source: Path, work: Path) -> tuple[list[str], str]:
    """The role on the inventory of ``data``: its mistakes or [], and its output."""
    work.mkdir()
    (work / "hosts.yml").write_text(yaml.safe_dump(as_inventory(data), sort_keys=False))
    (work / "play.yml").write_text(PLAYBOOK)
    out = work / "out"
    out.mkdir()
    proc = run([tool("ansible-playbook"), "-i", str(work / "hosts.yml"), "-c", "local",
                "-e", f"out={out}", "-e", f"congress_ha_cluster_source={source}",
                "-e", f"congress_ha_cluster_templates_dir={REPO / 'templates'}",
                "-e", json.dumps({"seed": SEED}), str(work / "play.yml")],
               env={"ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
                    "ANSIBLE_ROLES_PATH": str(ANSIBLE / "roles"), "NO_COLOR": "1"})
    mistakes = out / "mistakes.txt"
    lines = mistakes.read_text().splitlines()[1:] if mistakes.exists() else []
    mistakes.unlink(missing_ok=True)
    return lines, proc.stdout + proc.stderr


def _lab(data: dict[str, Any], source: Path) -> tuple[list[str], dict[str, str]]:
    try:
        return [], lab_cluster.bootstrap_files(data, str(source), SEED)
    except ClusterConfigError as exc:
        return exc.lines, {}


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every case through the three paths (the Ansible runs side by side)."""
    root = tmp_path_factory.mktemp("paths")
    jobs = {}
    for name, data in CASES.items():
        work = root / name
        work.mkdir()
        data = deployed(data)
        source = work / "cluster.yaml"
        source.write_text(yaml.safe_dump(data, sort_keys=False))
        jobs[name] = (data, source, work)
    with ThreadPoolExecutor(max_workers=4) as pool:
        ansible = {name: pool.submit(_ansible, data, source, work / "ansible")
                   for name, (data, source, work) in jobs.items()}
        results = {}
        for name, (data, source, work) in jobs.items():
            results[name] = {"render": _render(source, work / "render"),
                             "lab": _lab(data, source), "work": work}
        for name, future in ansible.items():
            results[name]["ansible"] = future.result()
    return results


@pytest.mark.parametrize("case", GOOD)
def test_the_three_paths_render_the_same_files(paths: dict, case: str) -> None:
    result = paths[case]
    work: Path = result["work"]
    assert result["render"] == [] and result["ansible"][0] == [] and result["lab"][0] == []
    rendered, ansible = work / "render", work / "ansible" / "out"
    lab = result["lab"][1]
    names = sorted(p.name for p in rendered.iterdir())
    assert sorted(p.name for p in ansible.iterdir()) == sorted(names + ["seed-cib.xml"])
    for name in names:
        assert (ansible / name).read_text() == (rendered / name).read_text(), name
    assert lab["corosync.conf"] == (rendered / "corosync.conf").read_text()
    assert lab["cib.xml"] == (ansible / "seed-cib.xml").read_text()


@pytest.mark.parametrize("case", BAD)
def test_the_three_paths_refuse_the_same_mistakes_with_the_same_lines(
        paths: dict, case: str) -> None:
    result = paths[case]
    source = result["work"] / "cluster.yaml"
    lines = result["render"]
    assert lines, "render accepted it"
    assert any(line.startswith(f"{source}: {BAD[case][1]}") for line in lines), lines
    assert result["ansible"][0] == lines
    assert result["lab"][0] == lines
    for output in (result["ansible"][1], "\n".join(lines)):
        assert "s3cret" not in output
