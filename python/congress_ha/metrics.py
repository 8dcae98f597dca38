"""Prometheus metrics of one process: its HA state, read when scraped, and two histograms.

Each process has a registry of its own (never prometheus_client's global one:
the all-in-one mode and the tests run several in one interpreter). The state
metrics come from one ``ProcessView`` that the server builds from its roles'
live views at scrape time, so nothing is counted twice; only the API's request
latency and the engine's evaluation time are observed as they happen. The API
serves the text at ``GET /metrics``; every process answers the control
socket's ``metrics`` command (``congress-ha-ctl metrics``), the DSD's only way
out. docs/operations.md lists every metric.

This module imports nothing of congress_ha, so the roles may build its views.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes
# Without this every histogram series has a *_created gauge beside it: twice the
# series, for a start time that Prometheus reads from the counters anyway.
disable_created_metrics()
PREFIX = "congress_ha_"
# Request latency: the API's answers take milliseconds; a simulate up to
# [limits] max_simulate_seconds (10 s).
REQUEST_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0)
# One batch of table changes through the engine: from microseconds (one row)
# to seconds (a snapshot of a large table).
EVALUATION_BUCKETS = (.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25,
                      .5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


@dataclass
class DsdView:
    """The DSD's action leader, executor, journal and publication."""

    leader_present: bool
    leader_changes: dict[str, int]      # by cause (leader.CAUSES)
    actions: dict[str, int]             # executed, skipped_by_journal, failed
    shadow_log: int
    shadow_dropped: int
    action_gap: float | None            # seconds since the last executed action
    journal_rows: int | None            # None: no journal, or not counted yet
    seqs: dict[str, int]                # datasource -> latest seq published
    journal_waiting: float = 0.0        # seconds the executor has waited for the database


@dataclass
class PeView:
    """A PE's replica: the sequence number applied per datasource, and how far behind."""

    seqs: dict[str, int]
    lags: dict[str, int]                # published (as last heard) minus applied
    synced: dict[str, bool]
    outbox: int = 0                     # requests waiting for the broker to take them
    outbox_dropped: int = 0


@dataclass
class ProcessView:
    role: str
    ready: bool
    threads: dict[str, bool]            # supervised thread name -> running as it should
    bus_refusals: dict[str, int]        # kind -> messages dropped
    dsd: DsdView | None = None
    pe: PeView | None = None


@dataclass
class _Families:
    out: list[Metric] = field(default_factory=list)

    def gauge(self, name: str, doc: str, value: float | None = None,
              labels: tuple[str, ...] = (), samples: dict | None = None) -> None:
        self._add(GaugeMetricFamily, name, doc, value, labels, samples)

    def counter(self, name: str, doc: str, value: float | None = None,
                labels: tuple[str, ...] = (), samples: dict | None = None) -> None:
        self._add(CounterMetricFamily, name, doc, value, labels, samples)

    def _add(self, kind, name, doc, value, labels, samples) -> None:
        if labels:
            family = kind(PREFIX + name, doc, labels=list(labels))
            for key, v in sorted((samples or {}).items()):
                family.add_metric([str(key)], float(v))
        else:
            family = kind(PREFIX + name, doc, value=float(value))
        self.out.append(family)


def families(view: ProcessView) -> list[Metric]:
    """The state metrics of one process view (pure: the collector's whole job)."""
    f = _Families()
    f.gauge("ready", "1 while this process is ready (health depth 20), else 0",
            labels=("role",), samples={view.role: int(view.ready)})
    f.gauge("thread_up", "1 while a supervised background thread runs as it should, "
            "0 once it died", labels=("thread",),
            samples={name: int(up) for name, up in view.threads.items()})
    f.counter("bus_refusals", "Bus messages this process dropped, by kind (forged, stale, "
              "replayed: the seal; invalid, unsupported: the contract)", labels=("kind",),
              samples=view.bus_refusals)
    d = view.dsd
    if d is not None:
        f.counter("leader_changes", "Changes of this DSD's action leader (to no leader "
                  "too), by cause", labels=("reason",), samples=d.leader_changes)
        f.gauge("leader_present", "1 while this DSD has an action leader", int(d.leader_present))
        f.counter("actions", "Actions this DSD decided to run, by outcome (executed, "
                  "skipped_by_journal: an earlier DSD ran it, failed)", labels=("outcome",),
                  samples=d.actions)
        if d.action_gap is not None:
            f.gauge("action_gap_seconds", "Seconds since this DSD last executed an action",
                    d.action_gap)
        f.gauge("shadow_log_entries", "Requests of non-leader PEs held for replay",
                d.shadow_log)
        f.counter("shadow_log_dropped", "Shadow entries dropped unexecuted (log full, or "
                  "older than shadow_log_age)", d.shadow_dropped)
        if d.journal_rows is not None:
            f.gauge("journal_rows", "Rows of the execution journal (counted at most every "
                    "JOURNAL_COUNT_EVERY, docs/tuning.md)", d.journal_rows)
        f.gauge("journal_wait_seconds", "Seconds the executor has waited for the journal's "
                "database to take a write (0: not waiting)", d.journal_waiting)
        f.gauge("dsd_table_seq", "Latest sequence number this DSD published, per datasource",
                labels=("datasource",), samples=d.seqs)
    p = view.pe
    if p is not None:
        f.gauge("pe_table_seq", "Sequence number this PE applied, per datasource",
                labels=("datasource",), samples=p.seqs)
        f.gauge("pe_table_lag", "Sequences this PE is behind the DSD, per datasource (the "
                "DSD's latest as last heard, minus applied)", labels=("datasource",),
                samples=p.lags)
        f.gauge("pe_outbox_requests", "Action requests waiting for the broker to take them",
                p.outbox)
        f.counter("pe_outbox_dropped", "Action requests dropped because the outbox was full",
                  p.outbox_dropped)
        f.gauge("pe_table_synced", "1 while this PE holds the datasource in sequence",
                labels=("datasource",), samples={n: int(s) for n, s in p.synced.items()})
    return f.out


class _StateCollector:
    def __init__(self, view: Callable[[], ProcessView]):
        self.view = view

    def describe(self) -> list[Metric]:
        return []  # not read at registration: the view may not exist yet

    def collect(self) -> Iterator[Metric]:
        yield from families(self.view())


class Metrics:
    """The registry of one process: the state collector and the two histograms."""

    def __init__(self, view: Callable[[], ProcessView] | None = None):
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            PREFIX + "api_request_duration_seconds",
            "API requests by method and route template, in seconds",
            ("method", "route"), registry=self.registry, buckets=REQUEST_BUCKETS)
        self.evaluation_seconds = Histogram(
            PREFIX + "engine_evaluation_seconds",
            "One batch of table changes evaluated by the policy engine, in seconds",
            registry=self.registry, buckets=EVALUATION_BUCKETS)
        if view is not None:
            self.registry.register(_StateCollector(view))

    def observe_request(self, method: str, route: str, seconds: float) -> None:
        """``route``: the route's template, never the raw path (bounded labels)."""
        method = method if method in METHODS else "other"
        self.request_seconds.labels(method, route).observe(seconds)

    def text(self) -> str:
        return generate_latest(self.registry).decode()
