"""congress_ha_cluster_context: the cluster description, checked by congress-ha's model.

An action plugin, so it runs on the controller: the nodes need nothing for it.
It takes cluster.yaml's keys as the role spells them (``cluster``, built in
vars/main.yml), adds the nodes from the two inventory groups, and hands the
whole to ``congress_ha.cluster.model.parse_cluster``, the function behind
``congress-ha-ctl render`` and the lab. A description with mistakes fails
the task with the lines render would print; a good one sets the fact
``congress_ha_cluster_context``, the template context of
``congress_ha.cluster.render.template_context``. No check and no default is
restated here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# The repository's python/ folder (the roles live in ansible/roles/ beside
# it): congress_ha is taken from there when the controller's Python has not
# installed it. The model needs only PyYAML and Jinja2, which Ansible has.
_REPO_PYTHON = Path(__file__).resolve().parents[4] / "python"

# Per-host variables that name a node differently from its inventory entry.
NODE_NAME = "congress_ha_cluster_node_name"
NODE_ADDRESS = "congress_ha_cluster_node_address"
NODE_ID = "congress_ha_cluster_nodeid"


def _congress_ha() -> tuple[Any, Any]:
    try:
        from congress_ha.cluster import model, render
    except ImportError:
        sys.path.append(str(_REPO_PYTHON))
        try:
            from congress_ha.cluster import model, render
        except ImportError as exc:
            raise AnsibleActionFail(
                f"congress_ha cannot be imported by the controller's Python "
                f"({sys.executable}): {exc}. Install congress-ha there (pip install "
                f"-e python/) or run ansible-playbook from the repository "
                f"({_REPO_PYTHON})") from None
    return model, render


def inventory_nodes(groups: dict[str, list[str]], hostvars: Any, api_pe_group: str,
                    datasources_group: str) -> tuple[list[dict[str, Any]], list[str]]:
    """cluster.yaml's ``nodes`` from the two groups, and the hosts in that order.

    The api-pe hosts first, then the datasources hosts that are not api-pe
    hosts, each in inventory order; a node's roles are the groups it is in.
    """
    api = list(groups.get(api_pe_group) or [])
    dsd = list(groups.get(datasources_group) or [])
    hosts = api + [h for h in dsd if h not in api]
    nodes = []
    for host in hosts:
        hv = hostvars[host]
        node = {
            "name": hv[NODE_NAME] if NODE_NAME in hv else host,
            "address": (hv[NODE_ADDRESS] if NODE_ADDRESS in hv
                        else hv["ansible_host"] if "ansible_host" in hv else host),
            "roles": [role for role, members in (("api-pe", api), ("datasources", dsd))
                      if host in members],
        }
        if NODE_ID in hv:
            node["nodeid"] = hv[NODE_ID]
        nodes.append(node)
    return nodes, hosts


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("cluster", "api_pe_group", "datasources_group", "source"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        model, render = _congress_ha()
        api_group = args.get("api_pe_group", "congress_api_pe")
        dsd_group = args.get("datasources_group", "congress_datasources")
        nodes, hosts = inventory_nodes(task_vars.get("groups", {}), task_vars["hostvars"],
                                       api_group, dsd_group)
        data = dict(args.get("cluster") or {})
        data["nodes"] = nodes
        source = args.get("source") or "the Ansible inventory"
        try:
            cluster = model.parse_cluster(data, source)
        except model.ClusterConfigError as exc:
            count = len(exc.lines)
            result.update(
                failed=True,
                msg=(f"{count} mistake{'s' if count != 1 else ''} in the cluster description "
                     f"(cluster.yaml's keys as congress_ha_cluster_* variables, "
                     f"docs/cluster-yaml.md; nodes[] are the hosts of {api_group}, then "
                     f"those of {dsd_group}: {', '.join(hosts) or 'none'}):\n"
                     + "\n".join(exc.lines)))
            return result
        # The context holds the bus and database URLs and the fence parameters.
        result.update(changed=False, _ansible_no_log=True,
                      ansible_facts={"congress_ha_cluster_context":
                                     render.template_context(cluster)})
        return result
