"""The lab's Corosync/Pacemaker cluster: online, fencing on, recovery of a killed node."""

from __future__ import annotations

import time

from .conftest import wait_for


def test_all_nodes_are_online(healthy):
    nodes = healthy.crm_nodes("n2")
    assert {n for n, a in nodes.items() if a.get("online") == "true"} == {
        n.name for n in healthy.plan.cluster_nodes
    }


def test_fencing_is_enabled_with_the_lab_fence_agent(healthy):
    r = healthy.exec("n1", "crm_attribute", "-t", "crm_config", "-n", "stonith-enabled",
                     "-G", "-q")  # fmt: skip
    assert r.stdout.strip() == "true"
    r = healthy.exec("n1", "crm_mon", "-1", "--output-as=xml")
    assert 'resource_agent="stonith:fence_congress_lab"' in r.stdout
    wait_for(lambda: 'role="Started"' in healthy.exec("n1", "crm_mon", "-1",
                                                      "--output-as=xml").stdout,
             20, "a lab fence device started")  # fmt: skip


def test_killed_node_is_lost_fenced_and_rejoins(healthy):
    victim = f"{healthy.name}-n3"
    t_kill = time.time()
    healthy.cli("kill", "n3")
    wait_for(lambda: victim not in healthy.online("n1"), 15, f"{victim} seen lost by n1",
             interval=0.05)  # fmt: skip

    def fenced():
        return [e for e in healthy.power_events()
                if e["by"] == "fence" and e["node"] == victim and e["time"] >= t_kill]

    # The node is already off, so the agent's reboot only has to power it on again.

    wait_for(fenced, 30, f"a fence action on {victim}")
    r = healthy.exec("n1", "stonith_admin", "--history", victim)
    assert "successful" in r.stdout, r.stdout
    healthy.cli("start", "n3")  # a no-op when the fence reboot already powered it on
    healthy.wait_all_online(timeout=30)


def test_stopped_node_leaves_cleanly_without_being_fenced(healthy):
    victim = f"{healthy.name}-n2"
    t_stop = time.time()
    assert "shut down cleanly" in healthy.cli("stop", "n2").stdout
    wait_for(lambda: victim not in healthy.online("n1"), 10, f"{victim} gone from n1's view")
    nodes = healthy.crm_nodes("n1")
    assert nodes[victim].get("unclean") == "false"
    assert not [e for e in healthy.power_events()
                if e["by"] == "fence" and e["node"] == victim and e["time"] >= t_stop]  # fmt: skip
    healthy.cli("start", "n2")
    healthy.wait_all_online(timeout=30)


def test_partitioned_node_is_fenced_by_the_majority_and_rejoins_after_heal(healthy):
    victim = f"{healthy.name}-n1"
    t_cut = time.time()
    healthy.cli("partition", "n1")
    try:
        wait_for(lambda: victim not in healthy.online("n2"), 15, f"{victim} lost by n2",
                 interval=0.05)  # fmt: skip
        wait_for(lambda: [e for e in healthy.power_events()
                          if e["by"] == "fence" and e["node"] == victim
                          and e["time"] >= t_cut], 30, f"{victim} fenced")  # fmt: skip
    finally:
        healthy.cli("heal", "n1")
    healthy.cli("start", "n1")
    healthy.wait_all_online(timeout=30, via="n2")
