"""congress_ha.lab.plan: names, addresses, route conflicts."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from congress_ha.lab.plan import (
    NETWORK,
    LabPlan,
    PlanError,
    check_name,
    hosts_file,
    node_address,
    overlapping_routes,
    plan_lab,
)


def test_nodes_get_consecutive_addresses_from_dot_11_and_infra_dot_10():
    plan = plan_lab("chlab", 3, root=Path("/x"))
    assert [(n.name, n.address) for n in plan.nodes] == [
        ("chlab-infra", "203.0.113.10"),
        ("chlab-n1", "203.0.113.11"),
        ("chlab-n2", "203.0.113.12"),
        ("chlab-n3", "203.0.113.13"),
    ]
    assert plan.bridge_address == "203.0.113.1"


def test_every_address_is_inside_the_lab_range_and_never_the_uplink():
    plan = plan_lab("a", 32, root=Path("/x"))
    uplink = ipaddress.ip_network("192.0.2.0/24")
    for n in plan.nodes:
        addr = ipaddress.ip_address(n.address)
        assert addr in NETWORK and addr not in uplink
    assert len({n.address for n in plan.nodes}) == len(plan.nodes)


def test_every_name_carries_the_lab_prefix_and_fits_an_interface_name():
    plan = plan_lab("abcdefghi", 12, root=Path("/x"))
    names = [plan.lan_netns, plan.bridge] + [n.netns for n in plan.nodes]
    names += [n.veth for n in plan.nodes]
    assert all(x.startswith("abcdefghi-") for x in names)
    assert max(len(x) for x in names) <= 15
    assert plan.state_dir == Path("/x/abcdefghi")
    assert str(plan.power_socket).startswith("/x/abcdefghi/")


@pytest.mark.parametrize("bad", ["", "Chlab", "1lab", "ch-lab", "abcdefghij", "ch_lab"])
def test_bad_lab_names_are_refused(bad):
    with pytest.raises(PlanError, match="invalid lab name"):
        check_name(bad)


@pytest.mark.parametrize("count", [0, 33])
def test_node_count_out_of_range_is_refused(count):
    with pytest.raises(PlanError, match="--nodes"):
        plan_lab("chlab", count)


def test_node_address_out_of_range_is_refused():
    with pytest.raises(PlanError):
        node_address(0)


def test_node_lookup_by_full_or_short_name():
    plan = plan_lab("chlab", 2, root=Path("/x"))
    assert plan.node("n2").name == "chlab-n2"
    assert plan.node("chlab-infra").short == "infra"
    with pytest.raises(PlanError, match="no node 'n7'"):
        plan.node("n7")


def test_no_infra_means_no_urls():
    plan = plan_lab("chlab", 1, infra=False, root=Path("/x"))
    assert plan.infra_node is None and plan.transport_url is None
    plan = plan_lab("chlab", 1)
    assert plan.transport_url == f"rabbit://congress:{plan.secret}@203.0.113.10:5672/congress"
    assert plan.database_url.startswith(f"postgresql://congress:{plan.secret}@")
    # Drawn for each lab, kept in its state.
    assert len(plan.secret) == 32 and plan_lab("chlab", 1).secret != plan.secret
    assert LabPlan.from_json(plan.to_json()).secret == plan.secret


def test_plan_round_trips_through_json():
    plan = plan_lab("chlab", 3, token_ms=3000, crypto=True, root=Path("/x"))
    from congress_ha.lab.plan import LabPlan

    assert LabPlan.from_json(plan.to_json()) == plan


def test_default_route_and_uplink_do_not_conflict():
    routes = [
        {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
        {"dst": "192.0.2.0/24", "dev": "eth0"},
        {"dst": "fe80::/64", "dev": "eth0"},
    ]
    assert overlapping_routes(routes) == []


@pytest.mark.parametrize("dst", ["203.0.113.0/24", "203.0.113.128/25", "203.0.0.0/16",
                                 "203.0.113.7"])  # fmt: skip
def test_routes_that_touch_the_range_conflict(dst):
    assert overlapping_routes([{"dst": dst, "dev": "br0"}]) == [f"{dst} dev br0"]


def test_hosts_file_names_every_node():
    text = hosts_file(plan_lab("chlab", 2, root=Path("/x")))
    assert "203.0.113.10\tchlab-infra" in text and "203.0.113.12\tchlab-n2" in text
    assert text.startswith("127.0.0.1\tlocalhost")
