#!/usr/bin/python3 -tt
"""fence_congress_lab: fence agent for congress-ha-lab nodes.

Installed as /usr/sbin/fence_congress_lab by `congress-ha-lab up` (or
`congress-ha-lab install-fence-agent`). It drives the lab's power switch over its
unix socket (`socket=` or, from the lab name, /var/tmp/congress-ha-lab/LAB/power.sock).
Built on the fence-agents library, so it takes stdin key=value arguments and the usual
command-line options, and supports on, off, reboot, status, monitor, list and metadata.
Runs with the system Python and its standard library only; metadata needs no root.
"""

import atexit
import json
import os
import socket
import sys

sys.path.append("/usr/share/fence")
from fencing import (  # noqa: E402
    all_opt,
    atexit_handler,
    check_input,
    fail_usage,
    fence_action,
    process_input,
    run_delay,
    show_docs,
)

DEFAULT_ROOT = "/var/tmp/congress-ha-lab"


def socket_path(options):
    if options.get("--socket"):
        return options["--socket"]
    lab = options.get("--lab")
    if not lab:
        plug = options.get("--plug", "")
        lab = plug.split("-", 1)[0] if "-" in plug else ""
    if not lab:
        fail_usage("Failed: give socket=PATH or lab=NAME")
    root = os.environ.get("CONGRESS_HA_LAB_ROOT") or DEFAULT_ROOT
    return os.path.join(root, lab, "power.sock")


def ask(options, req):
    req["by"] = "fence"
    if options.get("--password"):  # given, or read by password_script (fencing.py)
        req["password"] = options["--password"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(int(float(options.get("--shell-timeout", "30"))) + 30)
    try:
        s.connect(socket_path(options))
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError as e:
        fail_usage(f"Failed: power switch {socket_path(options)}: {e}")
    finally:
        s.close()
    res = json.loads(buf or b"{}")
    if not res.get("ok"):
        fail_usage("Failed: " + res.get("error", "no answer from the power switch"))
    return res


def get_power_status(conn, options):
    del conn
    return ask(options, {"op": "status", "node": options["--plug"]})["status"]


def set_power_status(conn, options):
    del conn
    if options["--action"] in ("on", "off"):
        ask(options, {"op": options["--action"], "node": options["--plug"]})


def get_list(conn, options):
    del conn
    nodes = ask(options, {"op": "list"})["nodes"]
    return {name: (name, state) for name, state in nodes.items()}


def define_options():
    all_opt["lab"] = {
        "getopt": ":",
        "longopt": "lab",
        "help": "--lab=[name]                   Name of the congress-ha-lab",
        "required": "0",
        "shortdesc": "Name of the lab (default: the node name's prefix)",
        "order": 1,
    }
    all_opt["socket"] = {
        "getopt": ":",
        "longopt": "socket",
        "help": "--socket=[path]                Unix socket of the lab's power switch",
        "required": "0",
        "shortdesc": "Path of the lab power switch's unix socket",
        "order": 1,
    }


def main():
    # A password is optional (passwd, with its password_script): the lab's
    # power switch checks one when it is given.
    device_opt = ["no_password", "passwd", "no_login", "port", "lab", "socket"]
    atexit.register(atexit_handler)
    define_options()
    options = check_input(device_opt, process_input(device_opt))
    docs = {
        "shortdesc": "Fence agent for congress-ha-lab nodes",
        "longdesc": "fence_congress_lab powers congress-ha-lab nodes (Linux namespaces) "
        "off and on through the lab's host-side power switch.",
        "vendorurl": "https://github.com/",
    }
    show_docs(options, docs)
    run_delay(options)
    sys.exit(fence_action(None, options, set_power_status, get_power_status, get_list))


if __name__ == "__main__":
    main()
