"""congress-ha-ctl: the control shim for OCF agents and operators.

    congress-ha-ctl health --role api-pe|datasources [--depth 0|10|20]
    congress-ha-ctl status [--json]
    congress-ha-ctl leader [--json]
    congress-ha-ctl metrics [--role datasources|api-pe] [--out FILE]
    congress-ha-ctl render --cluster cluster.yaml --out DIR
    congress-ha-ctl rules|datasources list [--json] | delete ID
    congress-ha-ctl db upgrade|version

``health`` exits with the OCF codes: 0 healthy, 7 not running, 1 failed, and
prints one line saying why.  It imports only the standard library and the
control client: Pacemaker runs it every few seconds on every node.
"""

from __future__ import annotations

import argparse
import errno
import glob
import json
import os
import sys
from typing import Any

from congress_ha import control
from congress_ha.config import DEFAULT_CONFIG_FILE, ConfigError, parse_file

OCF_SUCCESS, OCF_ERR_GENERIC, OCF_ERR_ARGS, OCF_ERR_INSTALLED, OCF_NOT_RUNNING = 0, 1, 2, 5, 7


def _settings(path: str):
    return parse_file(path)


def cmd_health(args) -> int:
    settings = _settings(args.config_file)
    run_dir = settings.ha.run_dir
    paths = [control.socket_path(run_dir, args.role), control.socket_path(run_dir, "all")]
    answer = None
    for path in paths:
        try:
            answer = control.ask(path, "health", timeout=args.timeout, depth=args.depth)
            break
        except control.NotRunning:
            continue
        except (OSError, ValueError) as exc:
            print(f"failed: {args.role} does not answer on {path}: {exc}")
            return OCF_ERR_GENERIC
    if answer is None:
        print(f"not running: no {args.role} process answers in {run_dir}")
        return OCF_NOT_RUNNING
    if not answer.get("ok"):
        print(f"failed: {answer.get('reason', 'unhealthy')}")
        return OCF_ERR_GENERIC
    if args.role == "api-pe" and args.depth >= 10:
        problem = _check_api(settings, args.timeout)
        if problem:
            print(f"failed: {problem}")
            return OCF_ERR_GENERIC
    leader = f"; leader={answer.get('leader') or '-'}" if "leader" in answer else ""
    print(f"ok: {answer.get('reason', 'healthy')}{leader}")
    return OCF_SUCCESS


def _check_api(settings, timeout: float) -> str | None:
    host = settings.api.bind_host
    wildcard = host in ("0.0.0.0", "::", "")
    if wildcard:
        host = "127.0.0.1"
    port = settings.api.bind_port
    import http.client  # only api-pe's check needs it (13 ms of imports)

    try:
        if settings.api.tls_cert_file:
            from congress_ha.api.tls import client_context

            # The certificate names the node's address; a wildcard bind is
            # checked on loopback, so there only the chain is verified.
            conn = http.client.HTTPSConnection(
                host, port, timeout=timeout,
                context=client_context(settings, check_hostname=not wildcard))
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
        conn.close()
    except OSError as exc:  # ssl.SSLError is one: a certificate the CA did not sign
        return f"API on {host}:{port} does not answer: {exc}"
    if status != 200:
        return f"API on {host}:{port} answered /healthz with HTTP {status}"
    return None


def _local_answers(settings, cmd: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(glob.glob(os.path.join(settings.ha.run_dir, "*.sock"))):
        try:
            out.append(control.ask(path, cmd, timeout=3.0))
        except (control.NotRunning, OSError, ValueError):
            continue
    return out


def cmd_status(args) -> int:
    settings = _settings(args.config_file)
    answers = [a for a in _local_answers(settings, "status") if "member" in a]
    if not answers:
        print(f"no congress-ha process answers in {settings.ha.run_dir} on this host",
              file=sys.stderr)
        return OCF_NOT_RUNNING
    # Every local process sees the whole bus; merge their views.
    nodes: dict[str, dict[str, Any]] = {}
    for a in answers:
        nodes[a["member"]] = {"member": a["member"], "roles": [a["role"]],
                              "incarnation": a["incarnation"], "ready": a["ready"],
                              "reason": a["reason"], "age": 0.0, "leader": _leader_of(a),
                              "local": True}
        for p in a["peers"]:
            if p["member"] not in nodes or nodes[p["member"]]["age"] > p["age"]:
                if nodes.get(p["member"], {}).get("local"):
                    continue
                nodes[p["member"]] = {"member": p["member"], "roles": p["roles"],
                                      "incarnation": p["incarnation"], "ready": p["ready"],
                                      "reason": p.get("reason", ""), "age": p["age"],
                                      "leader": p.get("leader"), "local": False}
    rows = sorted(nodes.values(), key=lambda n: n["member"])
    problems = [p for a in answers for p in _problems(a)]
    if args.json:
        print(json.dumps({"nodes": rows, "problems": problems}, indent=2))
        return OCF_SUCCESS
    print(f"{'MEMBER':28} {'ROLES':12} {'INCARNATION':13} {'READY':5} {'AGE':>6}  LEADER")
    for n in rows:
        print(f"{n['member']:28} {','.join(n['roles']):12} {n['incarnation']:13} "
              f"{'yes' if n['ready'] else 'no':5} {n['age']:6.2f}  {n['leader'] or '-'}"
              + ("" if n["ready"] else f"  ({n['reason']})"))
    if problems:
        print("\nPROBLEMS (on this host)")
        for p in problems:
            print(f"  {p['member']}: {p['kind']} {p['id']}: {p['detail']}")
    return OCF_SUCCESS


def _problems(status: dict[str, Any]) -> list[dict[str, Any]]:
    """What a local process skipped or refused: quarantined rules, rejected or failed
    datasources, engine rebuilds, bus messages whose seal did not hold."""
    out = []
    member = status.get("member", "?")
    pe = status.get("policy_engine") or {}
    for q in pe.get("quarantined_rules") or []:
        out.append({"member": member, "kind": "quarantined rule", "id": q["id"],
                    "detail": f"policy {q['policy']}: {q['error']} (congress-ha-ctl rules "
                              f"delete {q['id']})"})
    for name, why in (pe.get("rejected") or {}).items():
        out.append({"member": member, "kind": "rejected datasource", "id": name,
                    "detail": why})
    if pe.get("engine_rebuilds"):
        out.append({"member": member, "kind": "engine rebuilds", "id": "",
                    "detail": f"{pe['engine_rebuilds']} (see the log)"})
    for name, why in ((status.get("datasources") or {}).get("errors") or {}).items():
        out.append({"member": member, "kind": "failed datasource", "id": name,
                    "detail": why})
    waiting = (status.get("datasources") or {}).get("journal_waiting")
    if waiting is not None:
        out.append({"member": member, "kind": "actions waiting", "id": "",
                    "detail": f"the journal's database has not taken a write for "
                              f"{waiting:.0f} s; actions run, in order, once it does"})
    if pe.get("outbox"):
        out.append({"member": member, "kind": "requests not sent", "id": "",
                    "detail": f"{pe['outbox']} action requests wait for the broker "
                              f"({pe.get('outbox_dropped', 0)} dropped: outbox full)"})
    unsigned = {k: n for k, n in (status.get("bus_refused") or {}).items()
                if k in ("forged", "stale", "replayed") and n}
    if unsigned:
        out.append({"member": member, "kind": "refused bus messages", "id": "",
                    "detail": ", ".join(f"{n} {k}" for k, n in sorted(unsigned.items()))
                    + " (a node with another [bus] key_file, a clock off, or someone "
                      "publishing on the broker: see the log and docs/security.md)"})
    return out


def _leader_of(status: dict[str, Any]) -> str | None:
    ds = status.get("datasources")
    return ds["leader"]["leader"] if ds else None


def cmd_leader(args) -> int:
    settings = _settings(args.config_file)
    views = [a["leader"] for a in _local_answers(settings, "leader") if a.get("ok")]
    if not views:
        views = _leader_over_bus(settings)
    if not views:
        print("no DSD answers (none on this host, and none over the bus)", file=sys.stderr)
        return OCF_NOT_RUNNING
    if args.json:
        print(json.dumps({"dsds": views}, indent=2))
        return OCF_SUCCESS
    for v in views:
        print(f"DSD {v['dsd']}: leader {v['leader'] or '(none)'}"
              + (f" for {v['leader_for']:.1f}s" if v.get("leader_for") is not None else "")
              + f", {v['counters']['leader_changes']} changes, "
              f"{v['executed_total']} actions executed, shadow log {v['shadow_log']}")
        for h in v["history"]:
            print(f"  {h['age']:9.1f}s ago  {h['old'] or '-'} -> {h['new'] or '-'}: "
                  f"{h['reason']}")
    return OCF_SUCCESS


def _leader_over_bus(settings) -> list[dict[str, Any]]:
    from congress_ha.bus.contract import LEADER_STATUS, ErrorReply, call
    from congress_ha.bus.messages import LeaderStatusRequest
    from congress_ha.bus.transport import BusError, Transport
    from congress_ha.bus.wire import dump

    transport = Transport(settings)
    try:
        return [dump(call(transport, LEADER_STATUS, LeaderStatusRequest()))]
    except (BusError, ErrorReply) as exc:
        print(f"leader: {exc}", file=sys.stderr)
        return []
    finally:
        transport.stop()


def cmd_metrics(args) -> int:
    """A local process's metrics in Prometheus text: the DSD has no HTTP listener,
    so node_exporter's textfile collector (``--out``) or a scrape wrapper reads
    them here. ``--out`` replaces the file in one rename, never half written."""
    run_dir = _settings(args.config_file).ha.run_dir
    for path in (control.socket_path(run_dir, args.role), control.socket_path(run_dir, "all")):
        try:
            answer = control.ask(path, "metrics", timeout=args.timeout)
        except control.NotRunning:
            continue
        except (OSError, ValueError) as exc:
            print(f"congress-ha-ctl: {args.role} does not answer on {path}: {exc}",
                  file=sys.stderr)
            return OCF_ERR_GENERIC
        if not answer.get("ok"):
            print(f"congress-ha-ctl: {answer.get('reason', 'no metrics')}", file=sys.stderr)
            return OCF_ERR_GENERIC
        if not args.out:
            sys.stdout.write(answer["text"])
            return OCF_SUCCESS
        tmp = f"{args.out}.{os.getpid()}.tmp"  # not *.prom: the collector skips it
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(answer["text"])
            os.chmod(tmp, 0o644)
            os.replace(tmp, args.out)
        except OSError as exc:
            print(f"congress-ha-ctl: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
            return OCF_ERR_GENERIC
        return OCF_SUCCESS
    print(f"congress-ha-ctl: no {args.role} process answers in {run_dir}", file=sys.stderr)
    return OCF_NOT_RUNNING


def cmd_store(args) -> int:
    from congress_ha import ctl_store
    from congress_ha.store.db import StoreError

    settings = _settings(args.config_file)
    try:
        if args.action == "list":
            fn = ctl_store.rules_list if args.kind == "rules" else ctl_store.datasources_list
            return fn(settings, args.json)
        fn = ctl_store.rules_delete if args.kind == "rules" else ctl_store.datasources_delete
        return fn(settings, args.ident)
    except StoreError as exc:
        print(f"congress-ha-ctl: {exc}", file=sys.stderr)
        return OCF_ERR_GENERIC


def cmd_db(args) -> int:
    from congress_ha import ctl_store
    from congress_ha.store.db import StoreError

    settings = _settings(args.config_file)
    try:
        fn = ctl_store.db_upgrade if args.action == "upgrade" else ctl_store.db_version
        return fn(settings)
    except StoreError as exc:
        print(f"congress-ha-ctl: {exc}", file=sys.stderr)
        return OCF_ERR_GENERIC


def cmd_bus_key(args) -> int:
    """Print a new bus key, or write it (0600, never over an existing file)."""
    from congress_ha.bus.seal import new_key

    key = new_key()
    if not args.write:
        print(key)
        return OCF_SUCCESS
    try:
        fd = os.open(args.write, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        hint = (" (a key is there already: to rotate it, see docs/security.md)"
                if exc.errno == errno.EEXIST else "")
        print(f"congress-ha-ctl: cannot write {args.write}: {exc.strerror}{hint}",
              file=sys.stderr)
        return OCF_ERR_GENERIC
    with os.fdopen(fd, "w") as fh:
        fh.write(f"# congress-ha bus key: the same file on every node (docs/security.md)\n"
                 f"{key}\n")
    print(f"wrote {args.write} (0600); copy it to every node of the cluster")
    return OCF_SUCCESS


def build_parser(with_render: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="congress-ha-ctl",
                                description="Control shim of congress-ha.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--config-file", default=DEFAULT_CONFIG_FILE)

    h = sub.add_parser("health", help="OCF-style health of a local role")
    common(h)
    h.add_argument("--role", required=True, choices=["api-pe", "datasources"])
    h.add_argument("--depth", type=int, default=10, choices=[0, 10, 20])
    h.add_argument("--timeout", type=float, default=5.0)
    h.set_defaults(func=cmd_health)
    s = sub.add_parser("status", help="every node on the bus")
    common(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
    ld = sub.add_parser("leader", help="each DSD's action leader and its history")
    common(ld)
    ld.add_argument("--json", action="store_true")
    ld.set_defaults(func=cmd_leader)
    mt = sub.add_parser("metrics", help="a local process's metrics, Prometheus text")
    common(mt)
    mt.add_argument("--role", default="datasources", choices=["datasources", "api-pe"])
    mt.add_argument("--out", metavar="FILE", help="write them to FILE (one rename), e.g. "
                    "for node_exporter's textfile collector")
    mt.add_argument("--timeout", type=float, default=5.0)
    mt.set_defaults(func=cmd_metrics)
    bk = sub.add_parser("bus-key", help="a new key that signs every bus message")
    bk.add_argument("--write", metavar="FILE", help="write it to FILE (0600; never overwrites)")
    bk.set_defaults(func=cmd_bus_key)
    for kind in ("rules", "datasources"):
        st = sub.add_parser(kind, help=f"stored {kind}, from the database (list, delete)")
        st_sub = st.add_subparsers(dest="action", required=True)
        lst = st_sub.add_parser("list", help=f"every stored {kind[:-1]}, loadable or not")
        lst.add_argument("--json", action="store_true")
        common(lst)
        dl = st_sub.add_parser("delete", help=f"delete one stored {kind[:-1]}")
        dl.add_argument("ident", metavar="ID" if kind == "rules" else "NAME_OR_ID")
        common(dl)
        st.set_defaults(func=cmd_store, kind=kind)
    db = sub.add_parser("db", help="the database schema's revision (upgrade, version)")
    db_sub = db.add_subparsers(dest="action", required=True)
    common(db_sub.add_parser("upgrade", help="migrate the schema to this release's "
                                            "revision (once, from any node)"))
    common(db_sub.add_parser("version", help="the database's revision and this release's"))
    db.set_defaults(func=cmd_db)
    if with_render:
        # Jinja2 and PyYAML load only for render, never on the health path.
        from congress_ha.cluster.cli import add_render_parser

        add_render_parser(sub)
    else:
        sub.add_parser("render", help="render the cluster's files from cluster.yaml")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    light = bool(argv) and argv[0] in ("health", "status", "leader", "metrics")
    args = build_parser(with_render=not light).parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"congress-ha-ctl: {exc}", file=sys.stderr)
        return OCF_ERR_ARGS if args.command != "health" else _health_config_code(exc)
    except KeyboardInterrupt:
        return 130


def _health_config_code(exc: ConfigError) -> int:
    # A config file missing on this node is "not installed" here (5), so the
    # cluster may run the resource elsewhere; a bad value is bad args (2).
    return OCF_ERR_INSTALLED if "not found" in str(exc) else OCF_ERR_ARGS


if __name__ == "__main__":
    sys.exit(main())
