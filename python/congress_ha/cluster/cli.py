"""``congress-ha-ctl render``: cluster.yaml in, the cluster's files out.

``add_render_parser`` adds the subcommand to congress-ha-ctl's parser and
``run_render`` runs it: exit 0 with one line per file, or exit 2 with every
mistake on stderr (never a traceback).
"""

from __future__ import annotations

import argparse
import sys

from congress_ha.cluster.model import ClusterConfigError, load_cluster
from congress_ha.cluster.render import TEMPLATES_ENV, RenderError, render_cluster

EXIT_OK = 0
EXIT_USAGE = 2


def add_render_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``render --cluster FILE --out DIR [--templates DIR]`` to ``subparsers``."""
    parser = subparsers.add_parser(
        "render",
        help="render corosync.conf, the service config, the pcs and crmsh scripts, "
             "the CIB and haproxy.cfg from cluster.yaml",
        description="Check cluster.yaml and render every file the cluster needs into "
                    "--out: corosync.conf, congress-ha.NODE.conf for each node, "
                    "resources.pcs.sh, resources.crm, cib.xml and (with haproxy "
                    "enabled) haproxy.cfg.  See docs/cluster-yaml.md.")
    parser.add_argument("--cluster", required=True, metavar="FILE",
                        help="the cluster description (see docs/examples/cluster.yaml)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder to write into (created if missing)")
    parser.add_argument("--templates", metavar="DIR", default=None,
                        help=f"templates folder (default: ${TEMPLATES_ENV}, else the "
                             "templates/ that ships with congress-ha)")
    parser.add_argument("--check", action="store_true",
                        help="only check cluster.yaml; write nothing")
    parser.set_defaults(func=run_render)
    return parser


def run_render(args: argparse.Namespace) -> int:
    """Run the render subcommand; returns the exit code."""
    try:
        cluster = load_cluster(args.cluster)
        if getattr(args, "check", False):
            print(f"{args.cluster}: ok ({len(cluster.nodes)} nodes)")
            return EXIT_OK
        result = render_cluster(cluster, args.out, getattr(args, "templates", None))
    except ClusterConfigError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        count = len(exc.lines)
        print(f"{args.cluster}: {count} mistake{'s' if count != 1 else ''}; nothing written",
              file=sys.stderr)
        return EXIT_USAGE
    except RenderError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for path in result.written:
        print(f"wrote {path}")
    for sentence in result.skipped:
        print(sentence)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m congress_ha.cluster.cli``) until ctl wires it in."""
    parser = argparse.ArgumentParser(prog="congress-ha-ctl")
    add_render_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
