#!/bin/sh
# Dynamic inventory of the molecule lab: `congress-ha-lab inventory` as JSON
# (Ansible's script inventory format). An empty inventory while the lab is
# not up (before create, after destroy).
set -eu
repo=${CONGRESS_HA_REPO:?CONGRESS_HA_REPO is not set (molecule.yml sets it)}
lab=${MOLECULE_LAB:?MOLECULE_LAB is not set}
case ${1:-} in
    --host) echo '{}'; exit 0 ;;
esac
"$repo/.venv/bin/congress-ha-lab" --name "$lab" inventory 2>/dev/null \
    | "$repo/.venv/bin/python" -c '
import json, sys, yaml
inv = (yaml.safe_load(sys.stdin.read() or "{}") or {}).get("all", {})
out = {"_meta": {"hostvars": {}}, "all": {"vars": inv.get("vars", {}), "children": []}}
for group, body in (inv.get("children") or {}).items():
    hosts = body.get("hosts") or {}
    out[group] = {"hosts": sorted(hosts)}
    out["all"]["children"].append(group)
    for name, hostvars in hosts.items():
        out["_meta"]["hostvars"][name] = hostvars or {}
print(json.dumps(out))
' || echo '{"_meta": {"hostvars": {}}}'
