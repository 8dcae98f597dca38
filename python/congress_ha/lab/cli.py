"""congress-ha-lab: a local multi-node Corosync/Pacemaker lab in Linux namespaces.

Exit codes: 0 success, 1 the operation failed, 2 bad usage, 3 no such lab or node.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from . import fence, lab
from . import inventory as inv
from .plan import DEFAULT_NAME, PlanError, check_name, default_root, plan_lab

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _masked(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _lab_name(text: str) -> str:
    try:
        return check_name(text)
    except PlanError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    default_name = os.environ.get("CONGRESS_HA_LAB_NAME", DEFAULT_NAME)
    name_help = (f"lab name, prefix of every namespace, link and folder "
                 f"(default {default_name}; env CONGRESS_HA_LAB_NAME)")  # fmt: skip
    # --name is accepted before or after the command. The subcommands' copy must not
    # have a default of its own, or it would override a --name given before them.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", type=_lab_name, default=argparse.SUPPRESS, help=name_help)
    p = argparse.ArgumentParser(
        prog="congress-ha-lab",
        description="A local Corosync/Pacemaker lab: nodes are Linux namespaces on a "
                    "private bridge (203.0.113.0/24), with an infra node running RabbitMQ "
                    "and PostgreSQL and a fence agent backed by a host-side power switch.",
    )  # fmt: skip
    p.add_argument("--name", type=_lab_name, default=default_name, help=name_help)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser("up", parents=[common], help="build and boot a lab")
    up.add_argument("--nodes", type=_positive_int, default=3, help="cluster nodes (default 3)")
    up.add_argument("--token", type=_positive_int, default=1000, metavar="MS",
                    help="corosync totem token in ms (default 1000)")  # fmt: skip
    up.add_argument("--crypto", action="store_true",
                    help="encrypt corosync traffic (aes256/sha256 with a generated authkey)")
    up.add_argument("--no-cluster", action="store_true",
                    help="nodes without corosync/pacemaker (for Ansible to deploy onto)")
    up.add_argument("--no-infra", action="store_true", help="no RabbitMQ/PostgreSQL node")
    up.add_argument("--no-fencing", action="store_true",
                    help="stonith-enabled=false and no fence resource in the seed CIB")

    sub.add_parser("down", parents=[common], help="remove the lab: processes, namespaces, folder")
    st = sub.add_parser("status", parents=[common], help="nodes, addresses, what runs")
    st.add_argument("--json", action="store_true")
    sub.add_parser("inventory", parents=[common], help="print an Ansible inventory (YAML)")
    sub.add_parser("list", parents=[common], help="labs that have a state folder")
    for cmd, text in [("kill", "power a node off (SIGKILL of its PID 1)"),
                      ("start", "power a node on and wait until it is up"),
                      ("partition", "cut a node's link"),
                      ("heal", "restore a node's link")]:  # fmt: skip
        sp = sub.add_parser(cmd, parents=[common], help=text)
        sp.add_argument("node", help="node name (chlab-n1) or short name (n1, infra)")
        if cmd == "start":
            sp.add_argument("--no-wait", action="store_true", help="do not wait for the boot")
    sp = sub.add_parser("stop", parents=[common], help="shut a node down cleanly")
    sp.add_argument("node")
    sp.add_argument("--timeout", type=_positive_int, default=120,
                    help="seconds before the shutdown becomes a power-off (default 120)")
    ex = sub.add_parser("exec", parents=[common],
                        help="run a command in all of a node's namespaces")
    ex.add_argument("node")
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD",
                    help="command (default: a login shell)")
    sub.add_parser("install-fence-agent", parents=[common],
                   help=f"install {fence.AGENT_PATH} (up does it too)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = default_root()

    def say(msg: str) -> None:
        print(f"[lab {args.name}] {msg}", flush=True)

    try:
        return _dispatch(args, root, say)
    except lab.NotFound as e:
        print(f"congress-ha-lab: {e}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (lab.LabError, PlanError) as e:
        print(f"congress-ha-lab: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("congress-ha-lab: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace, root: Path, say) -> int:
    cmd = args.command
    if cmd == "up":
        plan = plan_lab(args.name, args.nodes, root=root, cluster=not args.no_cluster,
                        infra=not args.no_infra, token_ms=args.token, crypto=args.crypto,
                        fencing=not (args.no_fencing or args.no_cluster))  # fmt: skip
        lab.up(plan, say)
        return 0
    if cmd == "down":
        if os.geteuid() != 0:
            raise lab.LabError("congress-ha-lab down needs root")
        if not lab.down(args.name, root, say):
            say("nothing to remove")
        return 0
    if cmd == "list":
        from .state import list_labs

        for name in list_labs(root):
            print(name)
        return 0
    if cmd == "install-fence-agent":
        changed = fence.install_agent()
        say(f"{fence.AGENT_PATH} {'installed' if changed else 'up to date'}")
        return 0
    plan = lab.open_lab(args.name, root)
    if cmd == "status":
        st = lab.status(plan)
        if args.json:
            print(json.dumps(st, indent=2))
        else:
            print(_format_status(st))
        return 0
    if cmd == "inventory":
        sys.stdout.write(inv.render(plan))
        return 0
    if cmd == "exec":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        full = lab.exec_argv(plan, args.node, argv)
        sys.stdout.flush()
        os.execvp(full[0], full)
    if cmd == "start":
        lab.start(plan, args.node, say, wait=not args.no_wait)
    elif cmd == "kill":
        lab.kill(plan, args.node, say)
    elif cmd == "stop":
        lab.stop(plan, args.node, say, timeout=args.timeout)
    elif cmd in ("partition", "heal"):
        lab.partition(plan, args.node, say, heal=cmd == "heal")
    return 0


def _format_status(st: dict) -> str:
    lines = [
        f"lab {st['name']}: state {st['state_dir']}, power switch {st['power_switch']}",
        f"  network: netns {st['netns']}, bridge {st['bridge']}",
        f"  ssh key: {st['ssh_key']}",
    ]
    if st["transport_url"]:
        # The password is the lab's own (status --json has it, for scripts).
        lines.append(f"  transport_url: {_masked(st['transport_url'])}")
        lines.append(f"  database connection: {_masked(st['database_connection'])}")
    lines.append(f"  {'NODE':<14} {'ROLE':<8} {'ADDRESS':<14} {'POWER':<6} {'LINK':<18} SERVICES")
    for n in st["nodes"]:
        lines.append(f"  {n['name']:<14} {n['role']:<8} {n['address']:<14} {n['power']:<6} "
                     f"{n['link']:<18} {' '.join(n['services']) or '-'}")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
