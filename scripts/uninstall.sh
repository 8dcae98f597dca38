#!/bin/sh
# `make uninstall`: remove everything congress-ha put on this host outside its
# checkout, so that the next `make test` or `make demo` starts as on a new
# machine (.ci/run does this first). Debian packages and .venv stay: they are
# what `make setup` installs, idempotently, and a missing one is reinstalled.
#
# Removed: every lab (congress-ha-lab down: its processes by recorded PID, its
# namespaces, its state under /var/tmp/congress-ha-lab), the OCF agents, the
# lab fence agent, the e2e suite's files, the service's folders (config,
# run, log, state) and its system user and group (congress-ha). On a host that runs congress-ha for real, the state folder
# holds the SQLite database: this is a developer's command, not an operator's.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "uninstall: needs root (labs, /usr/lib/ocf, /etc)" >&2
    exit 1
fi

LAB_ROOT=/var/tmp/congress-ha-lab
PATHS="/usr/lib/ocf/resource.d/congress /usr/sbin/fence_congress_lab \
/etc/congress-ha /run/congress-ha /var/log/congress-ha /var/lib/congress-ha \
/var/tmp/congress-ha-e2e /usr/share/congress-ha $LAB_ROOT"

lab_cmd=.venv/bin/congress-ha-lab
status=0
if [ -d "$LAB_ROOT" ]; then
    for dir in "$LAB_ROOT"/*/; do
        [ -d "$dir" ] || continue
        name=$(basename "$dir")
        if [ -x "$lab_cmd" ]; then
            echo "uninstall: taking lab $name down"
            "$lab_cmd" --name "$name" down || status=1
        else
            echo "uninstall: lab $name is left: no $lab_cmd to take it down (run make setup)" >&2
            status=1
        fi
    done
fi
if [ "$status" -ne 0 ]; then
    echo "uninstall: a lab could not be taken down; $LAB_ROOT kept to try again" >&2
    exit 1
fi

for p in $PATHS; do
    if [ -e "$p" ] || [ -L "$p" ]; then
        rm -rf "$p"
        echo "uninstall: removed $p"
    fi
done
# The service's system user: made by `congress-ha-lab up` (the lab's nodes
# share the host's /etc/passwd) and by the playbook.
if getent passwd congress-ha >/dev/null; then
    userdel congress-ha
    echo "uninstall: removed user congress-ha"
fi
if getent group congress-ha >/dev/null; then
    groupdel congress-ha
    echo "uninstall: removed group congress-ha"
fi
echo "uninstall: done"
