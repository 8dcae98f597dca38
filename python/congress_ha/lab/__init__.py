"""congress-ha-lab: a local multi-node Corosync/Pacemaker lab in Linux namespaces (docs/lab.md)."""
