"""Bus authenticity on a real broker (bus/seal.py): what a process without the
cluster's key sends is dropped and counted, never acted on; a copy of a genuine
message is dropped as a replay; the service itself runs signed throughout."""

from __future__ import annotations

from congress_ha.bus import contract as bus
from congress_ha.bus import messages as m
from congress_ha.bus.seal import new_key
from congress_ha.bus.transport import Transport
from congress_ha.config import parse_file
from tests.support.procs import Cluster, wait_for


def outsider(tmp_path, broker_url, name, key_file=None) -> Transport:
    conf = tmp_path / f"{name}.conf"
    conf.write_text(f"[DEFAULT]\ntransport_url = {broker_url}\nnode_id = {name}\n"
                    + (f"[bus]\nkey_file = {key_file}\n" if key_file else ""))
    return Transport(parse_file(str(conf)))


def refused(proc, kind: str) -> int:
    return proc.status().get("bus_refused", {}).get(kind, 0)


def test_forged_and_replayed_messages_are_dropped_and_counted(broker, tmp_path):
    c = Cluster(tmp_path, broker.url)
    c.seed_datasources(rate=5.0)
    pe = c.add_pe("pe1").start()
    dsd = c.add_dsd("dsd").start()
    wrong_key = tmp_path / "wrong.key"
    wrong_key.write_text(new_key() + "\n")
    wrong_key.chmod(0o600)
    forgers = [outsider(tmp_path, broker.url, "mallory", wrong_key),   # another key
               outsider(tmp_path, broker.url, "eve")]                   # no key at all
    insider = outsider(tmp_path, broker.url, "replayer", c.bus_key())
    try:
        wait_for(lambda: pe.healthy("api-pe", 20) and dsd.healthy("datasources", 20), 60,
                 "the PE and the DSD up and synced")
        wait_for(lambda: c.actions(), 30, "actions flowing")
        leader = dsd.status()["datasources"]["leader"]
        changes = leader["counters"]["leader_changes"]
        pe_status = pe.status()
        for t in forgers:
            # The leader's own goodbye, forged: believed, it would end the leadership.
            bus.send(t, bus.GOODBYE, m.Goodbye(pe_status["member"], pe_status["incarnation"]))
            # An action in the leader's name: believed, it would run.
            bus.send(t, bus.EXECUTE_ACTION, m.ActionRequest(
                f"forged-{t.settings.get('DEFAULT', 'node_id')}", pe_status["member"],
                pe_status["incarnation"], "out", "log", ("forged",)))
        wait_for(lambda: refused(dsd, "forged") >= 4 and refused(pe, "forged") >= 2, 30,
                 "the forgeries refused by the DSD (goodbyes, requests) and the PE (goodbyes)")

        # A genuine message, sent twice with the same seal: the copy is a replay.
        args = bus.POLICY_CHANGED.encode(m.PolicyChanged(0))
        seal = insider.sealer.seal(bus.TOPIC_HEARTBEAT, "policy_changed", args)
        for _ in range(2):
            insider.broadcast(bus.TOPIC_HEARTBEAT, "policy_changed", args, seal)
        wait_for(lambda: refused(dsd, "replayed") >= 1 and refused(pe, "replayed") >= 1, 30,
                 "the copy refused as a replay")

        # Nothing forged ran, and the leader never changed.
        assert not [a for a in c.actions() if a["args"] == ["forged"]]
        n = len(c.actions())
        wait_for(lambda: len(c.actions()) > n, 30, "actions still flowing")
        after = dsd.status()["datasources"]["leader"]
        assert after["leader"] == leader["leader"]
        assert after["counters"]["leader_changes"] == changes
        assert "signed with an unknown key" in dsd.logtext()  # then counted, not logged
    finally:
        for t in (*forgers, insider):
            t.stop()
        c.stop_all()
