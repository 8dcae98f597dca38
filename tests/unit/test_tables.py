"""congress_ha.bus.tables: sequence numbers, gaps and snapshot resync."""

from congress_ha.bus.tables import TablePublisher, TableReplica


def pub_and_replica():
    pub = TablePublisher("inc1")
    pub.add_datasource("ds", {"t": ["a"]})
    return pub, TableReplica(behind_grace=0.5)


def synced(pub, rep):
    rep.on_snapshot(pub.snapshot("ds"))


def test_publisher_numbers_each_change_and_skips_no_ops():
    pub, _ = pub_and_replica()
    d1 = pub.replace("ds", "t", [(1,), (2,)])
    d2 = pub.replace("ds", "t", [(2,), (3,)])
    assert (d1.seq, d1.added, d1.removed) == (1, [[1], [2]], [])
    assert (d2.seq, d2.added, d2.removed) == (2, [[3]], [[1]])
    assert pub.replace("ds", "t", [(3,), (2,)]) is None


def test_in_order_deltas_are_applied_and_reported():
    pub, rep = pub_and_replica()
    synced(pub, rep)
    changes = rep.on_delta(pub.replace("ds", "t", [(1,)]))
    assert [(c.table, c.added, c.removed) for c in changes] == [("t", [(1,)], [])]
    assert rep.rows("ds", "t") == {(1,)}


def test_a_gap_asks_for_a_snapshot_and_resumes_from_it():
    pub, rep = pub_and_replica()
    synced(pub, rep)
    pub.replace("ds", "t", [(1,)])                   # seq 1: lost
    d2 = pub.replace("ds", "t", [(1,), (2,)])        # seq 2
    assert rep.on_delta(d2) == []
    assert rep.needs_snapshot() == ["ds"] and rep.gaps == 1
    snap = pub.snapshot("ds")
    d3 = pub.replace("ds", "t", [(1,), (2,), (3,)])  # arrives while we wait
    rep.on_delta(d3)
    changes = rep.on_snapshot(snap)
    assert rep.rows("ds", "t") == {(1,), (2,), (3,)}
    assert sorted(r for c in changes for r in c.added) == [(1,), (2,), (3,)]
    assert rep.needs_snapshot() == []


def test_a_duplicate_delta_is_ignored():
    pub, rep = pub_and_replica()
    synced(pub, rep)
    d = pub.replace("ds", "t", [(1,)])
    rep.on_delta(d)
    assert rep.on_delta(d) == []


def test_a_new_dsd_incarnation_forces_a_snapshot():
    pub, rep = pub_and_replica()
    synced(pub, rep)
    rep.on_heartbeat("inc2", {"ds": 0}, now=0.0)
    assert rep.needs_snapshot() == ["ds"]


def test_a_heartbeat_ahead_for_longer_than_the_grace_means_lost_deltas():
    pub, rep = pub_and_replica()
    synced(pub, rep)
    rep.on_heartbeat("inc1", {"ds": 3}, now=0.0)
    assert rep.needs_snapshot() == []               # may be in flight
    rep.on_heartbeat("inc1", {"ds": 3}, now=0.6)
    assert rep.needs_snapshot() == ["ds"]


def test_a_datasource_the_dsd_no_longer_announces_is_dropped():
    pub, rep = pub_and_replica()
    synced(pub, rep)
    rep.on_delta(pub.replace("ds", "t", [(1,)]))
    changes = rep.on_heartbeat("inc1", {}, now=0.0)
    assert [(c.table, c.removed) for c in changes] == [("t", [(1,)])]
    assert rep.rows("ds", "t") == set()


def test_lag_is_the_dsds_latest_as_heard_minus_what_was_applied():
    pub, rep = pub_and_replica()
    synced(pub, rep)
    assert rep.lags() == {}  # no heartbeat heard yet: unknown, not 0
    rep.on_delta(pub.replace("ds", "t", [(1,)]))     # seq 1 applied
    pub.replace("ds", "t", [(2,)])                   # seq 2: lost
    rep.on_heartbeat("inc1", {"ds": 2}, 0.0)         # the DSD is at 2
    assert rep.lags() == {"ds": 1} and rep.synced() == {"ds": True}
    rep.on_delta(pub.replace("ds", "t", [(3,)]))     # seq 3: out of sequence
    assert rep.lags() == {"ds": 2}, "a delta also tells how far the DSD is"
    rep.on_snapshot(pub.snapshot("ds"))
    assert rep.lags() == {"ds": 0}


def test_lag_is_unknown_while_the_replica_is_of_another_dsd_incarnation():
    pub, rep = pub_and_replica()
    synced(pub, rep)
    rep.on_heartbeat("inc2", {"ds": 1}, 0.0)
    assert rep.lags() == {} and rep.synced() == {"ds": False}
