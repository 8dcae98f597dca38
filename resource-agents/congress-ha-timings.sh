# congress-ha-timings.sh: the timings of the congress-ha OCF agents, in
# seconds. GENERATED from python/congress_ha/timings.py by
# `python -m congress_ha.timings --write`: do not edit (a test compares).
# Sourced by congress-ha-common.sh; installed next to it, mode 644.
# shellcheck disable=SC2034 # read by the agents that source it
CHA_START_TIMEOUT=30
CHA_STOP_TIMEOUT=20
CHA_MONITOR_INTERVAL_0=5
CHA_MONITOR_TIMEOUT_0=10
CHA_MONITOR_INTERVAL_10=10
CHA_MONITOR_TIMEOUT_10=20
CHA_MONITOR_INTERVAL_20=60
CHA_MONITOR_TIMEOUT_20=30
CHA_VALIDATE_TIMEOUT=20
CHA_METADATA_TIMEOUT=5
CHA_MARGIN_MIN=2
