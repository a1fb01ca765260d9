#!/usr/bin/env bash
# A local dev cluster for `make run`: three memcached on 127.0.0.1:11311-11313 and
# mcproxy in front of them with configs/local.yaml, its log on this terminal.
# Ctrl-C (or SIGTERM/SIGHUP to this script) stops everything this script started,
# by PID, and nothing else.
#
# Usage: scripts/devcluster.sh [extra mcproxy flags, e.g. -log-level debug]
#
# Environment:
#   MCPROXY          mcproxy binary               (default bin/mcproxy)
#   CONFIG           mcproxy config file          (default configs/local.yaml)
#   MEMCACHED_PORTS  backend ports; must match the backends in CONFIG
#                                                 (default "11311 11312 11313")
#   MEMCACHED_MB     memory limit per memcached   (default 64)
#   MEMCACHED_ONLY   set to 1 to start only the memcached backends (e.g. to run
#                    mcproxy yourself under a debugger)
#
# memcached is installed with apt-get when it is missing (sudo is used when not root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MCPROXY=${MCPROXY:-bin/mcproxy}
CONFIG=${CONFIG:-configs/local.yaml}
read -r -a MEMCACHED_PORTS <<<"${MEMCACHED_PORTS:-11311 11312 11313}"
MEMCACHED_MB=${MEMCACHED_MB:-64}
MEMCACHED_ONLY=${MEMCACHED_ONLY:-0}

# The processes this script started; only these are ever signalled.
memcached_pids=()
mcproxy_pid=""
force=0 # set by a second Ctrl-C during shutdown: SIGKILL what is left at once

log() { printf 'devcluster: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# config_port KEY: the port of a top-level "KEY: host:port" line in CONFIG, or nothing.
config_port() {
	sed -nE "s/^$1:[[:space:]]*[\"']?[^\"'#[:space:]]*:([0-9]+)[\"']?.*/\\1/p" "$CONFIG" | head -n 1
}

install_memcached() {
	if command -v memcached >/dev/null 2>&1; then
		return 0
	fi
	command -v apt-get >/dev/null 2>&1 ||
		die "memcached is not installed and there is no apt-get; install memcached and retry"
	log "memcached not found; installing it with apt-get"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y memcached
	# Debian's package starts its own memcached service on 127.0.0.1:11211, the port
	# mcproxy listens on. We installed the package only for its binary: stop that service.
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet memcached 2>/dev/null; then
		log "stopping and disabling the memcached.service the package just started (it holds port 11211)"
		as_root systemctl disable --now memcached
	fi
}

# alive_child PID: true while PID is a running (not yet exited) child of this shell.
# Checking the parent guards against signalling a stranger that reused the PID.
alive_child() {
	local stat state ppid
	if [[ ! -d /proc/self ]]; then
		kill -0 "$1" 2>/dev/null
		return
	fi
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) } # drop "pid (comm) "
	read -r state ppid _ <<<"$stat"
	[[ $state != Z && $ppid == "$$" ]]
}

# stop_pids PID...: SIGTERM those still running, give them 10s together (less if
# Ctrl-C is pressed again), then SIGKILL.
stop_pids() {
	local pid n left
	for pid in "$@"; do
		if alive_child "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
	done
	for ((n = 0; n < 100; n++)); do
		left=0
		for pid in "$@"; do
			if alive_child "$pid"; then left=1; fi
		done
		((left && !force)) || break
		sleep 0.1 || true
	done
	for pid in "$@"; do
		if alive_child "$pid"; then
			log "pid $pid did not stop; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
}

# stop_all: mcproxy first, so it can finish in-flight requests while its backends
# are still up, then the memcached backends.
stop_all() {
	if [[ -n $mcproxy_pid ]]; then stop_pids "$mcproxy_pid"; fi
	if ((${#memcached_pids[@]} > 0)); then stop_pids "${memcached_pids[@]}"; fi
	mcproxy_pid=""
	memcached_pids=()
}

cleanup() {
	local status=$?
	trap - EXIT
	trap 'force=1' INT TERM HUP
	if [[ -n $mcproxy_pid ]] || ((${#memcached_pids[@]} > 0)); then
		log "stopping pids $mcproxy_pid ${memcached_pids[*]}"
		stop_all
	fi
	exit "$status"
}
# A stop asked for (Ctrl-C, SIGTERM, SIGHUP) is the normal end of a dev
# cluster: everything is stopped by cleanup and the script exits 0, so make
# reports no error. A failure to start still exits 1.
trap cleanup EXIT
trap 'exit 0' INT TERM HUP

# wait_listening PID PORT WHAT: wait up to 5s for PORT to accept connections.
wait_listening() {
	local pid=$1 port=$2 what=$3 n
	for ((n = 0; n < 50; n++)); do
		if port_open "$port"; then return 0; fi
		alive_child "$pid" || die "$what (pid $pid) exited before listening on port $port"
		sleep 0.1 || true
	done
	die "$what (pid $pid) is not listening on port $port after 5s"
}

start_memcached() {
	local port=$1
	local args=(-l 127.0.0.1 -p "$port" -U 0 -m "$MEMCACHED_MB")
	# memcached refuses to run as root unless told which user to become.
	if [[ $(id -u) -eq 0 ]]; then args+=(-u nobody); fi
	memcached "${args[@]}" &
	memcached_pids+=("$!")
	wait_listening "$!" "$port" "memcached"
	log "memcached pid $! listening on 127.0.0.1:$port"
}

main() {
	install_memcached

	local listen_port="" admin_port=""
	if [[ $MEMCACHED_ONLY != 1 ]]; then
		[[ -x $MCPROXY ]] || die "$MCPROXY not found or not executable; run 'make build' first"
		[[ -r $CONFIG ]] || die "config $CONFIG not found"
		listen_port=$(config_port listen)
		admin_port=$(config_port admin)
	fi

	local port check=("${MEMCACHED_PORTS[@]}")
	if [[ -n $listen_port ]]; then check+=("$listen_port"); fi
	if [[ -n $admin_port ]]; then check+=("$admin_port"); fi
	for port in "${check[@]}"; do
		if port_open "$port"; then
			die "port $port on 127.0.0.1 is already in use (another memcached or mcproxy?); stop it first"
		fi
	done

	for port in "${MEMCACHED_PORTS[@]}"; do
		start_memcached "$port"
	done

	if [[ $MEMCACHED_ONLY == 1 ]]; then
		log "memcached running on ports ${MEMCACHED_PORTS[*]}; Ctrl-C stops them"
		wait
		return 0
	fi

	log "starting $MCPROXY -config $CONFIG -log-format console $*"
	"$MCPROXY" -config "$CONFIG" -log-format console "$@" &
	mcproxy_pid=$!
	if [[ -n $listen_port ]]; then
		wait_listening "$mcproxy_pid" "$listen_port" "mcproxy"
		log "ready; try: printf 'set a 0 0 1\\r\\nx\\r\\nget a\\r\\n' | nc -q1 127.0.0.1 $listen_port"
	fi
	log "Ctrl-C stops mcproxy and the memcached backends"

	# Wait for mcproxy; a signal to this script interrupts the wait and runs the traps.
	local status=0
	wait "$mcproxy_pid" || status=$?
	mcproxy_pid=""
	log "mcproxy exited with status $status"
	return "$status"
}

main "$@"
