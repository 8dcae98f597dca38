"""Every fixed timing of congress-ha, in one table, with the rules between them.

Three kinds, all here:

* **Pacemaker operations** (``OPERATIONS``): the timeouts and intervals the
  agents advertise in their meta-data, that the rendered CIB uses by default,
  and that the agents fall back to as their own budgets when Pacemaker passes
  none. The agents are shell: they read ``resource-agents/congress-ha-timings.sh``,
  which is *generated* from this table (``python -m congress_ha.timings
  --write``; a test fails when it is stale), never edited by hand.
* **Server constants** (``SERVER``): backstops and budgets that are not worth
  an option; the modules that use them import them from here.
* **Measured** (``MEASURED``): what a start takes, measured, so that the
  relations can say how much room a timeout leaves.

The relations (``relation_errors``) are checked at start (config.py) and at
render (cluster/model.py): the DSD's shadow grace outlasts the peer timeout,
a start timeout covers a measured start twice over, and the server's own stop
fits in the agent's stop budget. docs/tuning.md lists this table; a test
compares them.
"""

from __future__ import annotations

import sys
from pathlib import Path


class Timing:
    """One timing. A plain class: config.py imports this module on the health
    path of every Pacemaker monitor, where dataclasses would cost ~4 ms."""

    __slots__ = ("name", "seconds", "used_by", "why")

    def __init__(self, name: str, seconds: float, used_by: str, why: str) -> None:
        self.name, self.seconds, self.used_by, self.why = name, seconds, used_by, why


def _table(*rows: Timing) -> dict[str, Timing]:
    return {t.name: t for t in rows}


OPERATIONS = _table(
    Timing("start_timeout", 30, "agents' meta-data, CIB start op, start budget",
           "a start measured at most 3.5 s on a loaded 2-core machine (MEASURED); "
           "failing sooner moves a DSD sooner"),
    Timing("stop_timeout", 20, "agents' meta-data, CIB stop op, stop budget",
           "the server exits within STOP_BUDGET of SIGTERM; the rest is the SIGKILL margin"),
    Timing("monitor_interval_0", 5, "agents' meta-data (depth 0)", "a fork-free process check"),
    Timing("monitor_timeout_0", 10, "agents' meta-data (depth 0)", "it reads /proc only"),
    Timing("monitor_interval_10", 10, "agents' meta-data, CIB monitor op (depth 10)",
           "API and bus round trip: the check the rendered CIB runs"),
    Timing("monitor_timeout_10", 20, "agents' meta-data, CIB monitor op (depth 10)",
           "a loaded broker may take seconds to answer"),
    Timing("monitor_interval_20", 60, "agents' meta-data (depth 20)", "a full readiness check"),
    Timing("monitor_timeout_20", 30, "agents' meta-data (depth 20)",
           "it waits for snapshots of every datasource"),
    Timing("validate_timeout", 20, "agents' meta-data", "runs the server's config check"),
    Timing("metadata_timeout", 5, "agents' meta-data", "prints a here-document"),
    Timing("margin_min", 2, "agents: start and stop keep max(10%, this) of their timeout",
           "to send SIGKILL and report before Pacemaker's own timeout"),
)

SERVER = _table(
    Timing("POLICY_POLL", 2.0, "roles/policy_engine.py",
           "a PE re-reads the policies this often: the bound on a missed broadcast"),
    Timing("DATASOURCE_POLL", 5.0, "roles/dsd/drivers.py",
           "a DSD re-reads the datasources this often: the bound on a missed change"),
    Timing("PUSH_POLL", 1.0, "roles/dsd/drivers.py",
           "a DSD publishes a push stored while it or the bus was away within this"),
    Timing("PUSH_NOTICE_WAIT", 1.0, "roles/dsd_client.py",
           "an API node waits this long for the DSD to publish a push it stored"),
    Timing("DATASOURCE_CACHE", 1.0, "roles/service.py",
           "how old a datasource list an API node may serve"),
    Timing("REJECT_RETRY", 5.0, "roles/policy_engine.py",
           "between snapshot attempts of a datasource the engine refused"),
    Timing("RESEND_LEAD", 5.0, "roles/policy_engine.py",
           "a new DSD gets the requests sent since this long before the old was last heard"),
    Timing("JOURNAL_COUNT_EVERY", 10.0, "roles/dsd/actions.py",
           "the DSD counts its journal's rows for the metrics at most this often: a "
           "query on a table that only grows"),
    Timing("LEADER_MAX_SLEEP", 0.05, "roles/dsd/actions.py",
           "the leader state machine's clock ticks at least this often"),
    Timing("STOP_BUDGET", 5.0, "server.py", "SIGTERM to exit"),
    Timing("SCHEMA_LOCK_TIMEOUT", 60.0, "store/schema.py",
           "a starting process waits this long for another one's schema check or migration"),
    Timing("ORPHAN_TRANSACTION_TIMEOUT", 5.0, "store/db.py",
           "the database ends a session idle this long inside a transaction: the locks "
           "of a process that died mid-write do not outlive it"),
)

MEASURED = _table(
    Timing("start", 3.5, "relation_errors",
           "slowest of 5 starts per role to health depth 10, RabbitMQ, load 4.6 on 2 cores "
           "(2026-12-02)"),
)

# How much room a start timeout must leave over a measured start.
START_FACTOR = 2.0
SHELL_FILE = Path(__file__).resolve().parents[2] / "resource-agents" / "congress-ha-timings.sh"


def seconds(name: str) -> float:
    """A timing of any of the three tables, by name."""
    for table in (OPERATIONS, SERVER, MEASURED):
        if name in table:
            return table[name].seconds
    raise KeyError(name)


def relation_errors(*, heartbeat_interval: float | None = None,
                    peer_timeout: float | None = None, shadow_grace: float | None = None,
                    start_timeout: float | None = None,
                    stop_timeout: float | None = None) -> list[tuple[str, str]]:
    """(option, sentence) for every relation between the timings given that does
    not hold (a relation whose timings are not all given is not checked)."""
    errors = []
    if (heartbeat_interval is not None and peer_timeout is not None
            and peer_timeout < 2 * heartbeat_interval):
        errors.append(("peer_timeout", f"peer_timeout {peer_timeout:g} s is less than twice "
                       f"heartbeat_interval ({heartbeat_interval:g} s): one late heartbeat "
                       "would count as a lost peer"))
    if shadow_grace and peer_timeout is not None and shadow_grace <= peer_timeout:
        # (shadow_grace 0: the safety net is off)
        errors.append(("shadow_grace", f"shadow_grace {shadow_grace:g} s must be longer than "
                       f"peer_timeout ({peer_timeout:g} s): a DSD that takes a new action "
                       "leader needs the old leader's requests in its shadow log until "
                       "then"))
    if start_timeout is not None:
        floor = START_FACTOR * MEASURED["start"].seconds
        if start_timeout < floor:
            errors.append(("start_timeout", f"start_timeout {start_timeout:g} s is less than "
                           f"{floor:g} s ({START_FACTOR:g} x the slowest start measured, "
                           f"{MEASURED['start'].seconds:g} s): starts would time out"))
    if stop_timeout is not None:
        budget = stop_timeout - max(stop_timeout / 10, OPERATIONS["margin_min"].seconds)
        if budget <= SERVER["STOP_BUDGET"].seconds:
            errors.append(("stop_timeout", f"stop_timeout {stop_timeout:g} s leaves a stop "
                           f"budget of {budget:g} s, not more than the server's own "
                           f"{SERVER['STOP_BUDGET'].seconds:g} s to exit on SIGTERM"))
    return errors


def shell() -> str:
    """resource-agents/congress-ha-timings.sh: the operations, for the agents."""
    lines = ["# congress-ha-timings.sh: the timings of the congress-ha OCF agents, in",
             "# seconds. GENERATED from python/congress_ha/timings.py by",
             "# `python -m congress_ha.timings --write`: do not edit (a test compares).",
             "# Sourced by congress-ha-common.sh; installed next to it, mode 644.",
             "# shellcheck disable=SC2034 # read by the agents that source it"]
    for t in OPERATIONS.values():
        value = int(t.seconds) if float(t.seconds).is_integer() else t.seconds
        lines.append(f"CHA_{t.name.upper()}={value}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="congress-ha's timings: print the table, or "
                                "write the agents' shell file from it.")
    p.add_argument("--write", action="store_true", help=f"write {SHELL_FILE}")
    p.add_argument("--shell", action="store_true", help="print the agents' shell file")
    args = p.parse_args(argv)
    if args.write:
        SHELL_FILE.write_text(shell())
        print(f"wrote {SHELL_FILE}")
    elif args.shell:
        sys.stdout.write(shell())
    else:
        for title, table in (("operations", OPERATIONS), ("server", SERVER),
                             ("measured", MEASURED)):
            for t in table.values():
                print(f"{title:<10} {t.name:<20} {t.seconds:>6g} s  {t.used_by}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
