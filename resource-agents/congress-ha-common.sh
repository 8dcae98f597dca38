#!/bin/sh
#
# congress-ha-common.sh: what the congress-ha OCF agents (api-pe, datasources)
# share: start, stop, monitor and validation of one congress-ha-server role.
#
# Copyright the congress-ha contributors. License: Apache-2.0.
#
# Sourced, never run: the agent first sources ocf-shellfuncs, sets CHA_ROLE
# (api-pe|datasources), CHA_ROLE_FLAGS (the server's role flags), its
# OCF_RESKEY_* parameters and the texts of its meta-data (CHA_LONGDESC,
# CHA_SHORTDESC, CHA_CTL_USE), and defines two hooks:
#   cha_role_healthy   after a successful health check at depth >= 10
#   cha_role_stopped   after a successful stop
# It is installed next to the agents, mode 644 (not executable, so Pacemaker
# never lists it as an agent), and found through the agent's own directory.
#
# Exit codes are returned by name; every failure says why through
# ocf_exit_reason. Depth 0 of monitor forks nothing: it must stay as cheap as
# ocf:heartbeat:Dummy's monitor.

# shellcheck disable=SC2154 # OCF_RESKEY_* and CHA_ROLE* come from the agent

# The timings (seconds): one table, python/congress_ha/timings.py, written
# out for the shell next to this file.
# shellcheck source=/dev/null # generated; checked on its own
. "${CHA_AGENT_DIR}/congress-ha-timings.sh"

# Stop and start keep this much of Pacemaker's operation timeout for
# themselves (to escalate to SIGKILL, to report), in ms: 10%, at least
# CHA_MARGIN_MIN seconds.
CHA_MARGIN_MIN_MS=$(( CHA_MARGIN_MIN * 1000 ))

cha_usage() {
	cat <<END
usage: $0 {start|stop|monitor|validate-all|meta-data|usage}

Manages the ${CHA_ROLE} role of congress-ha-server. Expects an OCF environment
(OCF_ROOT, OCF_RESKEY_*); see docs/agents.md.
END
}

# The agent's meta-data: what both agents share, around the role's own text.
# $1: longdesc, $2: shortdesc, $3: what the ctl parameter is used for.
cha_meta_data() {
	cat <<END
<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="${CHA_ROLE}" version="1.0">
<version>1.1</version>

<longdesc lang="en">
$1
</longdesc>
<shortdesc lang="en">$2</shortdesc>

<parameters>
<parameter name="config" required="0">
<longdesc lang="en">
The congress-ha service configuration file (oslo.config INI).
</longdesc>
<shortdesc lang="en">Configuration file</shortdesc>
<content type="string" default="${OCF_RESKEY_config_default}" />
</parameter>

<parameter name="node_id" required="0">
<longdesc lang="en">
The node id on the congress-ha bus (overrides [DEFAULT] node_id). Empty means
the local node name: crm_node -n, or uname -n without a cluster.
</longdesc>
<shortdesc lang="en">Node id on the bus</shortdesc>
<content type="string" default="${OCF_RESKEY_node_id_default}" />
</parameter>

<parameter name="binary" required="0">
<longdesc lang="en">
The server command, by name (looked up in PATH) or as a full path.
</longdesc>
<shortdesc lang="en">Server command</shortdesc>
<content type="string" default="${OCF_RESKEY_binary_default}" />
</parameter>

<parameter name="ctl" required="0">
<longdesc lang="en">
The control shim used for $3, by name or path.
</longdesc>
<shortdesc lang="en">Control shim command</shortdesc>
<content type="string" default="${OCF_RESKEY_ctl_default}" />
</parameter>

<parameter name="user" required="0">
<longdesc lang="en">
The user the server runs as: the service's own system user, which reads its
config and secrets through its group (mode 0640) and owns its state folder
and the folders of [drivers] file_allowed_dirs. The congress_ha Ansible role
creates it; by hand: useradd --system --user-group --home-dir
/var/lib/congress-ha --shell /usr/sbin/nologin congress-ha. The agent
creates the server's [ha] run_dir for it at each start.
</longdesc>
<shortdesc lang="en">User</shortdesc>
<content type="string" default="${OCF_RESKEY_user_default}" />
</parameter>

<parameter name="pid" unique="1" required="0">
<longdesc lang="en">
Where the agent records the server's PID.
</longdesc>
<shortdesc lang="en">PID file</shortdesc>
<content type="string" default="${OCF_RESKEY_pid_default}" />
</parameter>

<parameter name="log" required="0">
<longdesc lang="en">
The file that receives the server's output (appended).
</longdesc>
<shortdesc lang="en">Log file</shortdesc>
<content type="string" default="${OCF_RESKEY_log_default}" />
</parameter>

<parameter name="additional_parameters" required="0">
<longdesc lang="en">
More arguments for the server, split on spaces.
</longdesc>
<shortdesc lang="en">Additional server arguments</shortdesc>
<content type="string" default="${OCF_RESKEY_additional_parameters_default}" />
</parameter>
</parameters>

<actions>
<action name="start" timeout="${CHA_START_TIMEOUT}s" />
<action name="stop" timeout="${CHA_STOP_TIMEOUT}s" />
<action name="monitor" depth="0" timeout="${CHA_MONITOR_TIMEOUT_0}s" interval="${CHA_MONITOR_INTERVAL_0}s" />
<action name="monitor" depth="10" timeout="${CHA_MONITOR_TIMEOUT_10}s" interval="${CHA_MONITOR_INTERVAL_10}s" />
<action name="monitor" depth="20" timeout="${CHA_MONITOR_TIMEOUT_20}s" interval="${CHA_MONITOR_INTERVAL_20}s" />
<action name="validate-all" timeout="${CHA_VALIDATE_TIMEOUT}s" />
<action name="meta-data" timeout="${CHA_METADATA_TIMEOUT}s" />
</actions>
</resource-agent>
END
}

# -- small helpers (no forks) -------------------------------------------------

# Milliseconds since boot (a monotonic clock) in CHA_NOW_MS, from /proc/uptime.
cha_now_ms() {
	read -r _cha_up _cha_idle </proc/uptime
	_cha_frac=${_cha_up#*.}
	_cha_frac=${_cha_frac#0}
	CHA_NOW_MS=$(( ${_cha_up%.*} * 1000 + ${_cha_frac:-0} * 10 ))
}

# The budget in ms that an action may spend before it must report: Pacemaker's
# timeout for the operation minus the margin. $1: default timeout in ms.
cha_budget_ms() {
	_cha_timeout=${OCF_RESKEY_CRM_meta_timeout:-$1}
	ocf_is_decimal "$_cha_timeout" || _cha_timeout=$1
	_cha_margin=$(( _cha_timeout / 10 ))
	[ "$_cha_margin" -ge "$CHA_MARGIN_MIN_MS" ] || _cha_margin=$CHA_MARGIN_MIN_MS
	CHA_BUDGET_MS=$(( _cha_timeout - _cha_margin ))
	[ "$CHA_BUDGET_MS" -ge 1000 ] || CHA_BUDGET_MS=1000
}

# The requested monitor depth, rounded down to one we implement (OCF: an
# unknown level runs the next lower one).
cha_depth() {
	_cha_level=${OCF_CHECK_LEVEL:-0}
	ocf_is_decimal "$_cha_level" || _cha_level=0
	if [ "$_cha_level" -ge 20 ]; then
		CHA_DEPTH=20
	elif [ "$_cha_level" -ge 10 ]; then
		CHA_DEPTH=10
	else
		CHA_DEPTH=0
	fi
}

# True when PID $1 is alive and is our server: its command line names the
# binary and the role. A zombie has an empty command line, so it is not.
cha_is_ours() {
	_cha_cmdline=""
	# read drops the NULs between arguments; substrings still match.
	read -r _cha_cmdline </proc/"$1"/cmdline 2>/dev/null
	case "$_cha_cmdline" in
	*"${OCF_RESKEY_binary##*/}"*"$CHA_ROLE_MATCH"*) return 0 ;;
	esac
	return 1
}

# True when PID $1 exists and is not a zombie (whatever it runs).
cha_alive() {
	_cha_stat=""
	read -r _cha_stat </proc/"$1"/stat 2>/dev/null || return 1
	_cha_stat=${_cha_stat##*) }
	case "$_cha_stat" in
	Z* | X* | "") return 1 ;;
	esac
	return 0
}

# State of the recorded process: $OCF_SUCCESS (running, CHA_PID set),
# $OCF_NOT_RUNNING (no pid file: cleanly stopped), $OCF_ERR_GENERIC (a pid file
# whose process is gone or is not ours: it died without a stop).
cha_process_status() {
	CHA_PID=""
	[ -e "$OCF_RESKEY_pid" ] || return "$OCF_NOT_RUNNING"
	read -r CHA_PID <"$OCF_RESKEY_pid" 2>/dev/null
	ocf_is_decimal "$CHA_PID" || return "$OCF_ERR_GENERIC"
	cha_is_ours "$CHA_PID" && return "$OCF_SUCCESS"
	return "$OCF_ERR_GENERIC"
}

# The last non-empty line of the server's log, for exit reasons.
cha_last_log_line() {
	[ -r "$OCF_RESKEY_log" ] || { echo "(no log at $OCF_RESKEY_log)"; return; }
	tail -n 20 "$OCF_RESKEY_log" | grep -v '^[[:space:]]*$' | tail -n 1
}

# The node id: the parameter, else the Pacemaker node name, else uname -n.
cha_node_id() {
	CHA_NODE_ID=$OCF_RESKEY_node_id
	[ -n "$CHA_NODE_ID" ] && return
	CHA_NODE_ID=$(crm_node -n 2>/dev/null) || CHA_NODE_ID=""
	[ -n "$CHA_NODE_ID" ] || CHA_NODE_ID=$(uname -n)
}

# [ha] run_dir of the config file, as the server reads it (default
# /run/congress-ha): CHA_RUN_DIR. The last value in the section wins.
cha_run_dir() {
	CHA_RUN_DIR=$(sed -n '/^[[:space:]]*\[ha\]/,/^[[:space:]]*\[/s/^[[:space:]]*run_dir[[:space:]]*=[[:space:]]*//p' "$OCF_RESKEY_config" | tail -n 1 | sed 's/[[:space:]]*$//')
	[ -n "$CHA_RUN_DIR" ] || CHA_RUN_DIR=/run/congress-ha
}

# -- validation ---------------------------------------------------------------

# What the parameters say, independent of what is installed: OCF_ERR_CONFIGURED.
cha_validate_params() {
	if [ -z "$OCF_RESKEY_config" ]; then
		ocf_exit_reason "parameter config is empty"
		return "$OCF_ERR_CONFIGURED"
	fi
	case "$OCF_RESKEY_node_id" in
	*:* | *[[:space:]]*)
		ocf_exit_reason "node_id '$OCF_RESKEY_node_id' must not contain ':' or spaces"
		return "$OCF_ERR_CONFIGURED" ;;
	esac
	for _cha_path in "$OCF_RESKEY_pid" "$OCF_RESKEY_log"; do
		case "$_cha_path" in
		/*) ;;
		*)
			ocf_exit_reason "pid and log must be absolute paths, not '$_cha_path'"
			return "$OCF_ERR_CONFIGURED" ;;
		esac
	done
	return "$OCF_SUCCESS"
}

# What this host must have: OCF_ERR_INSTALLED (or OCF_ERR_PERM). The config
# file is one of them: missing on one node, the cluster may still run the
# resource on another (OCF_ERR_CONFIGURED would stop it everywhere).
cha_validate_env() {
	if [ ! -f "$OCF_RESKEY_config" ]; then
		ocf_exit_reason "config file $OCF_RESKEY_config not found on this node"
		return "$OCF_ERR_INSTALLED"
	fi
	if [ ! -r "$OCF_RESKEY_config" ]; then
		ocf_exit_reason "config file $OCF_RESKEY_config is not readable"
		return "$OCF_ERR_INSTALLED"
	fi
	for _cha_bin in "$OCF_RESKEY_binary" "$OCF_RESKEY_ctl"; do
		if ! have_binary "$_cha_bin"; then
			ocf_exit_reason "$_cha_bin not found in PATH ($PATH)"
			return "$OCF_ERR_INSTALLED"
		fi
	done
	# A user missing on one node is an install problem there, as a missing
	# config file is: the resource may still run on another node.
	if ! id -u "$OCF_RESKEY_user" >/dev/null 2>&1; then
		ocf_exit_reason "user '$OCF_RESKEY_user' does not exist on this node: create it (useradd --system --user-group --home-dir /var/lib/congress-ha --shell /usr/sbin/nologin $OCF_RESKEY_user; the congress_ha role does) or set the user parameter"
		return "$OCF_ERR_INSTALLED"
	fi
	if [ "$(id -u "$OCF_RESKEY_user")" != "$(id -u)" ]; then
		if ! ocf_is_root; then
			ocf_exit_reason "only root can run the server as user '$OCF_RESKEY_user'"
			return "$OCF_ERR_PERM"
		fi
		# What the server will need first, checked as its user: a config it
		# cannot read, or a venv under a folder it cannot enter, is an install
		# problem of this node, said here rather than as a failed start.
		_cha_bin=$(command -v "$OCF_RESKEY_binary")
		# A script's interpreter too (a venv's python may live in root's home).
		_cha_interp=$(sed -n '1s/^#![[:space:]]*\([^[:space:]]*\).*/\1/p' "$_cha_bin" 2>/dev/null)
		if ! setpriv --reuid="$OCF_RESKEY_user" --regid="$(id -g "$OCF_RESKEY_user")" --init-groups -- \
			test -r "$OCF_RESKEY_config" -a -x "$_cha_bin" -a -x "${_cha_interp:-$_cha_bin}"; then
			ocf_exit_reason "user '$OCF_RESKEY_user' cannot read $OCF_RESKEY_config or run $_cha_bin ${_cha_interp:+(interpreter $_cha_interp)}: give the config its group (chgrp $OCF_RESKEY_user; chmod 0640) and install the service where every user can read it (e.g. /opt/congress-ha/venv)"
			return "$OCF_ERR_INSTALLED"
		fi
	fi
	return "$OCF_SUCCESS"
}

cha_validate() {
	cha_validate_params || return $?
	cha_validate_env
}

# -- health through congress-ha-ctl ---------------------------------------------

# Ask the shim; CHA_HEALTH_LINE is its one line. Returns OCF_SUCCESS,
# OCF_NOT_RUNNING (nothing answers), OCF_ERR_CONFIGURED, or OCF_ERR_GENERIC.
cha_health() {
	CHA_HEALTH_LINE=$("$OCF_RESKEY_ctl" health --role "$CHA_ROLE" --depth "$1" \
		--config-file "$OCF_RESKEY_config" 2>&1)
	_cha_rc=$?
	CHA_HEALTH_LINE=$(printf '%s\n' "$CHA_HEALTH_LINE" | tail -n 1)
	case $_cha_rc in
	0) return "$OCF_SUCCESS" ;;
	7) return "$OCF_NOT_RUNNING" ;;
	2 | 6) return "$OCF_ERR_CONFIGURED" ;;
	5) return "$OCF_ERR_INSTALLED" ;;
	127) CHA_HEALTH_LINE="$OCF_RESKEY_ctl not found in PATH" ;;
	esac
	return "$OCF_ERR_GENERIC"
}

# -- actions ------------------------------------------------------------------

cha_monitor() {
	cha_process_status
	_cha_rc=$?
	if [ "$_cha_rc" -eq "$OCF_NOT_RUNNING" ]; then
		if ocf_is_probe; then
			if ! have_binary "$OCF_RESKEY_binary"; then
				ocf_log info "$OCF_RESKEY_binary is not installed here"
				return "$OCF_ERR_INSTALLED"
			fi
		else
			ocf_exit_reason "$CHA_ROLE is not running (no pid file $OCF_RESKEY_pid)"
		fi
		return "$OCF_NOT_RUNNING"
	fi
	if [ "$_cha_rc" -ne "$OCF_SUCCESS" ]; then
		# Not a clean stop (that removes the pid file): the process died.
		ocf_exit_reason "$CHA_ROLE process ${CHA_PID:-?} from $OCF_RESKEY_pid is gone: $(cha_last_log_line)"
		return "$OCF_ERR_GENERIC"
	fi
	cha_depth
	[ "$CHA_DEPTH" -ge 10 ] || return "$OCF_SUCCESS"

	cha_health "$CHA_DEPTH"
	_cha_rc=$?
	case $_cha_rc in
	"$OCF_SUCCESS")
		cha_role_healthy
		return "$OCF_SUCCESS" ;;
	"$OCF_NOT_RUNNING")
		# Our process is alive but does not answer: hung, not stopped.
		ocf_exit_reason "$CHA_ROLE process $CHA_PID runs but does not answer: $CHA_HEALTH_LINE"
		return "$OCF_ERR_GENERIC" ;;
	esac
	ocf_exit_reason "$CHA_HEALTH_LINE"
	return "$_cha_rc"
}

# Wait until the process $1 answers health at depth 10, dies, or the budget
# runs out. $2: 1 when this shell started it (so its exit code can be read).
cha_wait_healthy() {
	cha_budget_ms $(( CHA_START_TIMEOUT * 1000 ))
	cha_now_ms
	_cha_deadline=$(( CHA_NOW_MS + CHA_BUDGET_MS ))
	_cha_config_rc=""
	while :; do
		# Our own child may still be between fork and exec: alive is enough.
		if { [ "$2" = 1 ] && ! cha_alive "$1"; } || { [ "$2" != 1 ] && ! cha_is_ours "$1"; }; then
			_cha_code="?"
			if [ "$2" = 1 ]; then
				wait "$1"
				_cha_code=$?
			fi
			rm -f "$OCF_RESKEY_pid"
			if [ "$_cha_code" = 2 ]; then
				ocf_exit_reason "$(cha_last_log_line)"
				return "$OCF_ERR_CONFIGURED"
			fi
			ocf_exit_reason "$CHA_ROLE exited during start (code $_cha_code): $(cha_last_log_line)"
			return "$OCF_ERR_GENERIC"
		fi
		cha_health 10
		case $? in
		"$OCF_SUCCESS")
			ocf_log info "$CHA_ROLE started as PID $1: $CHA_HEALTH_LINE"
			return "$OCF_SUCCESS" ;;
		"$OCF_ERR_CONFIGURED")
			# The server reads the same file and exits 2 on it: wait for
			# that, so the reason is the server's own.
			_cha_config_rc=$OCF_ERR_CONFIGURED ;;
		esac
		cha_now_ms
		if [ "$CHA_NOW_MS" -ge "$_cha_deadline" ]; then
			if [ -n "$_cha_config_rc" ]; then
				ocf_exit_reason "$CHA_HEALTH_LINE"
				return "$OCF_ERR_CONFIGURED"
			fi
			ocf_exit_reason "$CHA_ROLE (PID $1) not healthy after $(( CHA_BUDGET_MS / 1000 ))s: $CHA_HEALTH_LINE"
			return "$OCF_ERR_GENERIC"
		fi
		sleep 0.2
	done
}

cha_start() {
	cha_validate || return $?
	if cha_process_status; then
		ocf_log info "$CHA_ROLE already runs as PID $CHA_PID"
		cha_wait_healthy "$CHA_PID" 0 || return $?
		cha_role_healthy
		return "$OCF_SUCCESS"
	fi
	rm -f "$OCF_RESKEY_pid"
	cha_node_id
	_cha_bin=$(command -v "$OCF_RESKEY_binary")
	mkdir -p "${OCF_RESKEY_pid%/*}" "${OCF_RESKEY_log%/*}" || {
		ocf_exit_reason "cannot create the folders of $OCF_RESKEY_pid and $OCF_RESKEY_log"
		return "$OCF_ERR_GENERIC"
	}
	_cha_runas=""
	if [ "$(id -u "$OCF_RESKEY_user")" != "$(id -u)" ]; then
		# HOME too: libpq reads ~/.postgresql/ and fails on a home it may not enter.
		_cha_home=$(getent passwd "$OCF_RESKEY_user" | cut -d: -f6)
		_cha_runas="setpriv --reuid=$OCF_RESKEY_user --regid=$(id -g "$OCF_RESKEY_user") --init-groups -- env HOME=${_cha_home:-/}"
		# The server makes its control socket in [ha] run_dir, under /run (a
		# tmpfs, empty after a boot) where only root may create folders.
		cha_run_dir
		if ! { mkdir -p "$CHA_RUN_DIR" && chown "$OCF_RESKEY_user:$(id -g "$OCF_RESKEY_user")" "$CHA_RUN_DIR" && chmod 0750 "$CHA_RUN_DIR"; }; then
			ocf_exit_reason "cannot make run_dir $CHA_RUN_DIR for user $OCF_RESKEY_user"
			return "$OCF_ERR_GENERIC"
		fi
	fi
	ocf_log info "starting $_cha_bin $CHA_ROLE_FLAGS as node $CHA_NODE_ID, user $OCF_RESKEY_user, log $OCF_RESKEY_log"
	# setsid: the server leaves the agent's process group (no fork here: a
	# background job of a non-interactive shell never leads its group), and
	# setpriv execs too, so $! is the server's own PID.
	# shellcheck disable=SC2086 # runas, flags and additional_parameters are word lists
	(cd / && exec setsid $_cha_runas "$_cha_bin" --config-file "$OCF_RESKEY_config" \
		--node-id "$CHA_NODE_ID" $CHA_ROLE_FLAGS $OCF_RESKEY_additional_parameters \
		</dev/null >>"$OCF_RESKEY_log" 2>&1) &
	_cha_pid=$!
	if ! echo "$_cha_pid" >"$OCF_RESKEY_pid"; then
		ocf_exit_reason "cannot write pid file $OCF_RESKEY_pid"
		kill -KILL "$_cha_pid" 2>/dev/null
		return "$OCF_ERR_GENERIC"
	fi
	cha_wait_healthy "$_cha_pid" 1 || return $?
	cha_role_healthy
	return "$OCF_SUCCESS"
}

# Wait up to $2 ms for PID $1 to be gone; true when it is.
cha_wait_gone() {
	cha_now_ms
	_cha_until=$(( CHA_NOW_MS + $2 ))
	while cha_is_ours "$1"; do
		cha_now_ms
		[ "$CHA_NOW_MS" -lt "$_cha_until" ] || return 1
		sleep 0.1
	done
	return 0
}

cha_stop() {
	if ! cha_process_status; then
		rm -f "$OCF_RESKEY_pid"
		cha_role_stopped
		ocf_log info "$CHA_ROLE is not running"
		return "$OCF_SUCCESS"
	fi
	cha_budget_ms $(( CHA_STOP_TIMEOUT * 1000 ))
	ocf_log info "stopping $CHA_ROLE (PID $CHA_PID, SIGTERM, up to ${CHA_BUDGET_MS}ms)"
	kill -TERM "$CHA_PID" 2>/dev/null
	if ! cha_wait_gone "$CHA_PID" "$CHA_BUDGET_MS"; then
		ocf_log warn "$CHA_ROLE (PID $CHA_PID) ignored SIGTERM for ${CHA_BUDGET_MS}ms: SIGKILL"
		kill -KILL "$CHA_PID" 2>/dev/null
		if ! cha_wait_gone "$CHA_PID" $(( CHA_MARGIN_MIN_MS / 2 )); then
			# The cluster must not think it stopped: it will fence this node.
			ocf_exit_reason "$CHA_ROLE (PID $CHA_PID) survives SIGKILL; cannot stop it"
			return "$OCF_ERR_GENERIC"
		fi
	fi
	rm -f "$OCF_RESKEY_pid"
	cha_role_stopped
	ocf_log info "$CHA_ROLE stopped"
	return "$OCF_SUCCESS"
}

# Dispatch the action and exit (the agent's final case, shared).
cha_main() {
	case $__OCF_ACTION in
	meta-data)
		cha_meta_data "$CHA_LONGDESC" "$CHA_SHORTDESC" "$CHA_CTL_USE"
		exit "$OCF_SUCCESS" ;;
	usage | help)
		cha_usage
		exit "$OCF_SUCCESS" ;;
	start) cha_start ;;
	stop) cha_stop ;;
	monitor) cha_monitor ;;
	validate-all) cha_validate ;;
	*)
		cha_usage
		exit "$OCF_ERR_UNIMPLEMENTED" ;;
	esac
	_cha_rc=$?
	ocf_log debug "${OCF_RESOURCE_INSTANCE} $__OCF_ACTION: $_cha_rc"
	exit "$_cha_rc"
}
