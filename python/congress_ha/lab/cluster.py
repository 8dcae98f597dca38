"""Bootstrap files of the lab's Corosync/Pacemaker cluster: corosync.conf and a seed CIB.

These are the lab's own minimal files so that `up` gives a running cluster at once;
a deployment through Ansible replaces them with the ones from templates/.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from .plan import LabPlan

# The schema of pacemaker 2.1.5 (FACTS.md). The seed must not carry crm_feature_set:
# a value newer than the installed one makes the controller exit.
CIB_SCHEMA = "pacemaker-3.9"
FENCE_AGENT = "fence_congress_lab"
FENCE_RESOURCE = "lab-fence"


def corosync_conf(plan: LabPlan) -> str:
    crypto = (
        "    crypto_cipher: aes256\n    crypto_hash: sha256\n"
        if plan.crypto
        else "    crypto_cipher: none\n    crypto_hash: none\n"
    )
    nodes = "".join(
        "    node {\n"
        f"        ring0_addr: {n.address}\n"
        f"        name: {n.name}\n"
        f"        nodeid: {n.nodeid}\n"
        "    }\n"
        for n in plan.cluster_nodes
    )
    two_node = "    two_node: 1\n" if len(plan.cluster_nodes) == 2 else ""
    return (
        f"# congress-ha-lab {plan.name}: written by `congress-ha-lab up`\n"
        "totem {\n"
        "    version: 2\n"
        f"    cluster_name: {plan.name}\n"
        "    transport: knet\n"
        f"    token: {plan.token_ms}\n"
        f"{crypto}"
        "}\n"
        "nodelist {\n"
        f"{nodes}"
        "}\n"
        "quorum {\n"
        "    provider: corosync_votequorum\n"
        f"{two_node}"
        "}\n"
        "logging {\n"
        "    to_logfile: yes\n"
        "    logfile: /var/log/corosync/corosync.log\n"
        "    to_stderr: no\n"
        "    to_syslog: no\n"
        "    timestamp: on\n"
        "}\n"
    )


def _nvpair(prefix: str, name: str, value: str) -> str:
    return (
        f'<nvpair id={quoteattr(prefix + "-" + name)} name={quoteattr(name)} '
        f"value={quoteattr(value)}/>"
    )


def seed_cib(plan: LabPlan) -> str:
    """The CIB each node starts from: dc-deadtime=2s (no 20 s wait) and lab fencing."""
    props = [
        _nvpair("cib-bootstrap-options", "dc-deadtime", "2s"),
        _nvpair("cib-bootstrap-options", "cluster-name", plan.name),
        _nvpair("cib-bootstrap-options", "stonith-enabled", "true" if plan.fencing else "false"),
    ]
    if len(plan.cluster_nodes) <= 2:
        props.append(_nvpair("cib-bootstrap-options", "no-quorum-policy", "ignore"))
    resources = ""
    if plan.fencing:
        ia = f"{FENCE_RESOURCE}-instance_attributes"
        hosts = " ".join(n.name for n in plan.cluster_nodes)
        resources = (
            f'      <primitive id="{FENCE_RESOURCE}" class="stonith" type="{FENCE_AGENT}">\n'
            f'        <instance_attributes id="{ia}">\n'
            f"          {_nvpair(ia, 'socket', str(plan.power_socket))}\n"
            f"          {_nvpair(ia, 'pcmk_host_list', hosts)}\n"
            "        </instance_attributes>\n"
            "        <operations>\n"
            f'          <op id="{FENCE_RESOURCE}-monitor-interval-60s" name="monitor" '
            'interval="60s"/>\n'
            "        </operations>\n"
            "      </primitive>\n"
        )
    props_xml = "".join(f"        {p}\n" for p in props)
    return (
        f'<cib validate-with="{CIB_SCHEMA}" epoch="1" num_updates="0" admin_epoch="0">\n'
        "  <configuration>\n"
        "    <crm_config>\n"
        '      <cluster_property_set id="cib-bootstrap-options">\n'
        f"{props_xml}"
        "      </cluster_property_set>\n"
        "    </crm_config>\n"
        "    <nodes/>\n"
        "    <resources>\n"
        f"{resources}"
        "    </resources>\n"
        "    <constraints/>\n"
        "  </configuration>\n"
        "  <status/>\n"
        "</cib>\n"
    )
