"""Bootstrap files of the lab's Corosync/Pacemaker cluster: corosync.conf and a seed CIB.

The lab describes its cluster as cluster.yaml data (``description``) and renders
both files from templates/ through the cluster model, the same check, context
and templates as `congress-ha-ctl render` and the Ansible roles, so that `up`
gives a running cluster at once.
"""

from __future__ import annotations

import os
from typing import Any

from congress_ha.cluster.model import parse_cluster
from congress_ha.cluster.render import environment, render_text, template_context, templates_dir

from .plan import LabPlan

# The schema of pacemaker 2.1.5 (FACTS.md).
CIB_SCHEMA = "pacemaker-3.9"
FENCE_AGENT = "fence_congress_lab"
# The first start does not wait Pacemaker's default 20 s for the other nodes.
DC_DEADTIME = "2s"
_NO_INFRA = "lab-without-infra.invalid"


def description(plan: LabPlan) -> dict[str, Any]:
    """The lab's cluster as cluster.yaml data: every node api-pe and datasources."""
    fencing: dict[str, Any] = {"enabled": False}
    if plan.fencing:
        fencing = {"agent": FENCE_AGENT, "params": {"socket": str(plan.power_socket)}}
    return {
        "cluster_name": plan.name,
        "nodes": [{"name": n.name, "address": n.address, "roles": ["api-pe", "datasources"],
                   "nodeid": n.nodeid} for n in plan.cluster_nodes],
        # cluster.yaml needs a bus and a database, even where neither file uses
        # them: a lab without infra names a host that cannot exist (RFC 2606).
        "transport_url": plan.transport_url or f"rabbit://{_NO_INFRA}/",
        "database_connection": plan.database_url or f"postgresql://{_NO_INFRA}/congress",
        "corosync": {"token": plan.token_ms, "crypto": plan.crypto},
        "fencing": fencing,
    }


def seed(plan: LabPlan) -> dict[str, Any]:
    """The seed CIB's own values (templates/seed-cib.xml.j2): fencing from the start."""
    properties = {"dc-deadtime": DC_DEADTIME, "cluster-name": plan.name}
    if len(plan.cluster_nodes) <= 2:
        properties["no-quorum-policy"] = "ignore"
    return {"schema": CIB_SCHEMA, "properties": properties, "fencing": True}


def bootstrap_files(data: dict[str, Any], source: str, seed: dict[str, Any],
                    templates: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """corosync.conf and the seed cib.xml of cluster.yaml ``data``, by file name.

    Raises ClusterConfigError (the mistakes, as render reports them) or RenderError.
    """
    context = template_context(parse_cluster(data, source))
    env = environment(templates_dir(templates))
    return {"corosync.conf": render_text(env, "corosync.conf.j2", context),
            "cib.xml": render_text(env, "seed-cib.xml.j2", context, seed=seed)}


def files(plan: LabPlan) -> dict[str, str]:
    """The lab's corosync.conf and seed cib.xml."""
    return bootstrap_files(description(plan), f"congress-ha-lab {plan.name}", seed(plan))
