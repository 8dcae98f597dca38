#!/bin/sh
# Deploy congress-ha with the Ansible playbook onto an existing lab, then wait
# until Pacemaker runs the service (docs/deployment.md, "The lab").
#
#   congress-ha-lab up --nodes 3 --name LAB --no-cluster
#   scripts/deploy-lab.sh LAB [pcs|crmsh]
#
# Runs ansible/site.yml with the lab's inventory (`congress-ha-lab inventory`)
# and the overlay ansible/inventories/lab, then waits until crm_mon in node 1
# shows congress-api-pe-clone started on every node and congress-datasources
# started. Running it again changes nothing (the recap says changed=0).
#
# Exit codes: 0 deployed and running; 1 failed (the last line says where);
# 2 bad usage; 3 no such lab.
# Environment: DEPLOY_TIMEOUT seconds to wait for the resources after the
# playbook (default 120); ANSIBLE_PLAYBOOK another ansible-playbook;
# ANSIBLE_ARGS more arguments for it (e.g. -v).
set -eu

usage() {
    echo "usage: $0 LAB [pcs|crmsh]   (LAB: a lab made with congress-ha-lab up --no-cluster)"
}

case $# in
    1|2) ;;
    *) usage >&2; exit 2 ;;
esac
case $1 in -h|--help) usage; exit 0 ;; esac
lab=$1
shell=${2:-pcs}
if ! printf '%s\n' "$lab" | grep -Eq '^[a-z0-9]{1,9}$'; then
    echo "$0: lab name '$lab': 1 to 9 lowercase letters or digits" >&2
    exit 2
fi
case $shell in
    pcs|crmsh) ;;
    *) echo "$0: cluster shell '$shell': pcs or crmsh" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=$repo/.venv
lab_cmd=$venv/bin/congress-ha-lab
[ -x "$lab_cmd" ] || lab_cmd=congress-ha-lab
playbook_cmd=${ANSIBLE_PLAYBOOK:-$venv/bin/ansible-playbook}
[ -x "$playbook_cmd" ] || command -v "$playbook_cmd" >/dev/null 2>&1 || {
    echo "$0: $playbook_cmd not found: pip install ansible-core into $venv" >&2
    exit 1
}
timeout=${DEPLOY_TIMEOUT:-120}
t0=$(date +%s)

say() {
    echo "[deploy-lab $lab +$(( $(date +%s) - t0 ))s] $*"
}
die() {
    say "FAILED: $*" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/deploy-lab-$lab.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

rc=0
"$lab_cmd" --name "$lab" inventory > "$work/lab.yml" 2> "$work/inventory.err" || rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$work/inventory.err" >&2
    if [ "$rc" -eq 3 ]; then
        say "no lab $lab: make one with congress-ha-lab up --nodes 3 --name $lab --no-cluster" >&2
        exit 3
    fi
    die "congress-ha-lab --name $lab inventory failed (exit $rc)"
fi
say "inventory of lab $lab written; running ansible/site.yml with $shell"

export ANSIBLE_CONFIG="$repo/ansible/ansible.cfg"
export CONGRESS_HA_REPO="$repo"
# shellcheck disable=SC2086 # ANSIBLE_ARGS is a list of words on purpose
if ! "$playbook_cmd" -i "$work/lab.yml" -i "$repo/ansible/inventories/lab" \
        -e "congress_ha_cluster_shell=$shell" ${ANSIBLE_ARGS:-} \
        "$repo/ansible/site.yml"; then
    die "ansible-playbook failed (see the task above); logs in the nodes: \
/var/tmp/congress-ha-lab/$lab/nodes/n1/root/var/log/"
fi
say "playbook done; waiting for the resources in crm_mon on ${lab}-n1 (at most ${timeout}s)"

# Started everywhere: one started api-pe instance per node in crm_mon's node
# list, and the DSD started somewhere.
check='
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
nodes = [n.get("name") for n in root.iter("node") if n.get("online") == "true"]
def started(rid):
    return sorted(n.get("name") for r in root.iter("resource") if r.get("id") == rid
                  and r.get("role") == "Started" and r.get("failed") == "false"
                  for n in r.iter("node"))
api, dsd = started("congress-api-pe"), started("congress-datasources")
print("nodes online: %s; congress-api-pe-clone started on: %s; congress-datasources on: %s"
      % (",".join(nodes) or "-", ",".join(api) or "-", ",".join(dsd) or "-"))
sys.exit(0 if nodes and sorted(nodes) == api and len(dsd) == 1 else 1)
'
deadline=$(( $(date +%s) + timeout ))
last=
while :; do
    line=
    if "$lab_cmd" --name "$lab" exec n1 -- crm_mon --one-shot --output-as=xml \
            > "$work/crm_mon.xml" 2>/dev/null \
        && line=$("$venv/bin/python" -c "$check" < "$work/crm_mon.xml"); then
        say "$line"
        say "deployed: congress-api-pe-clone started on every node, congress-datasources started"
        exit 0
    fi
    line=${line:-crm_mon did not answer}
    if [ "$line" != "$last" ]; then
        say "$line"
        last=$line
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        "$lab_cmd" --name "$lab" exec n1 -- crm_mon --one-shot --inactive >&2 || true
        die "the resources did not start within ${timeout}s (crm_mon above; agents' logs in \
/var/tmp/congress-ha-lab/$lab/nodes/n*/root/var/log/congress-ha/)"
    fi
    sleep 1
done
