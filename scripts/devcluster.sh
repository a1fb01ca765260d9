#!/usr/bin/env bash
# A local dev cluster for `make run`: three memcached on 127.0.0.1:11311-11313 and
# mcproxy in front of them with configs/local.yaml, its log on this terminal.
# Ctrl-C (or SIGTERM/SIGHUP to this script) stops everything this script started,
# by PID, and nothing else: mcproxy first, with one SIGTERM, so it drains (up to
# its -shutdown-grace), then the backends. A second Ctrl-C cuts the drain short.
#
# mcproxy runs in a session of its own (setsid), outside the terminal's
# foreground process group: Ctrl-C reaches this script only, and mcproxy gets
# exactly one signal, from here. (In the terminal's group it got the SIGINT and
# then this script's SIGTERM, which it took as a second signal: no drain.)
#
# Usage: scripts/devcluster.sh [extra mcproxy flags, e.g. -log-level debug]
#
# Environment:
#   MCPROXY          mcproxy binary               (default bin/mcproxy)
#   CONFIG           mcproxy config file          (default configs/local.yaml)
#   MEMCACHED_PORTS  ports of the memcached to start (default: the ports of the
#                    backends on 127.0.0.1 or localhost in CONFIG, else
#                    "11311 11312 11313")
#   MEMCACHED_MB     memory limit per memcached   (default 64)
#   MEMCACHED_ONLY   set to 1 to start only the memcached backends (e.g. to run
#                    mcproxy yourself under a debugger)
#
# memcached is installed with apt-get when it is missing (sudo is used when not root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MCPROXY=${MCPROXY:-bin/mcproxy}
CONFIG=${CONFIG:-configs/local.yaml}
MEMCACHED_PORTS=${MEMCACHED_PORTS:-}
MEMCACHED_MB=${MEMCACHED_MB:-64}
MEMCACHED_ONLY=${MEMCACHED_ONLY:-0}

# The processes this script started; only these are ever signalled.
memcached_pids=()
mcproxy_pid=""
mcproxy_status=0 # mcproxy's exit status once stopped
force=0          # set by a second Ctrl-C during shutdown: cut the drain short
# How long mcproxy may take to drain before SIGKILL: more than its default
# -shutdown-grace (10s).
MCPROXY_STOP_WAIT=${MCPROXY_STOP_WAIT:-15}

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

# config_backend_ports: the ports of the loopback addresses in CONFIG other
# than listen and admin (comments left out): the backends to start.
config_backend_ports() {
	sed -e 's/#.*//' "$CONFIG" | grep -vE '^[[:space:]]*(listen|admin):' |
		grep -oE '(127\.0\.0\.1|localhost):[0-9]+' | sed 's/.*://' | tr '\n' ' ' || true
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

# stop_pids SECONDS PID...: one SIGTERM to those still running, then wait up to
# SECONDS for them together. A Ctrl-C meanwhile sends a second SIGTERM (mcproxy
# then exits without finishing its drain) and waits one second more; what is
# left then gets SIGKILL. Sets stopped_status to the first non-zero exit status.
stop_pids() {
	local wait_s=$1 pid n left forced=0 status
	shift
	stopped_status=0
	for pid in "$@"; do
		if alive_child "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
	done
	for ((n = 0; n < wait_s * 10; n++)); do
		left=0
		for pid in "$@"; do
			if alive_child "$pid"; then left=1; fi
		done
		((left)) || break
		if ((force && !forced)); then
			forced=1
			n=$((wait_s * 10 - 10)) # one second more
			for pid in "$@"; do
				if alive_child "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
			done
		fi
		sleep 0.1 || true
	done
	for pid in "$@"; do
		if alive_child "$pid"; then
			log "pid $pid did not stop; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		status=0
		wait "$pid" 2>/dev/null || status=$?
		if ((stopped_status == 0)); then stopped_status=$status; fi
	done
}

# stop_all: mcproxy first, so it can finish in-flight requests while its backends
# are still up, then the memcached backends.
stop_all() {
	if [[ -n $mcproxy_pid ]]; then
		stop_pids "$MCPROXY_STOP_WAIT" "$mcproxy_pid"
		mcproxy_status=$stopped_status
		log "mcproxy exited with status $mcproxy_status"
	fi
	if ((${#memcached_pids[@]} > 0)); then stop_pids 10 "${memcached_pids[@]}"; fi
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
	if ((status == 0)); then status=$mcproxy_status; fi
	exit "$status"
}
# A stop asked for (Ctrl-C, SIGTERM, SIGHUP) is the normal end of a dev
# cluster: everything is stopped by cleanup and the script exits 0 (or with
# mcproxy's status if its drain failed), so make reports no error. A failure
# to start still exits 1.
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
		if [[ -z $MEMCACHED_PORTS ]]; then MEMCACHED_PORTS=$(config_backend_ports); fi
	fi
	local memcached_ports
	read -r -a memcached_ports <<<"${MEMCACHED_PORTS:-11311 11312 11313}"
	((${#memcached_ports[@]} > 0)) || die "no memcached ports to start (MEMCACHED_PORTS is blank)"

	local port check=("${memcached_ports[@]}")
	if [[ -n $listen_port ]]; then check+=("$listen_port"); fi
	if [[ -n $admin_port ]]; then check+=("$admin_port"); fi
	for port in "${check[@]}"; do
		if port_open "$port"; then
			die "port $port on 127.0.0.1 is already in use (another memcached or mcproxy?); stop it first"
		fi
	done

	for port in "${memcached_ports[@]}"; do
		start_memcached "$port"
	done

	if [[ $MEMCACHED_ONLY == 1 ]]; then
		log "memcached running on ports ${memcached_ports[*]}; Ctrl-C stops them"
		wait
		return 0
	fi

	log "starting $MCPROXY -config $CONFIG -log-format console $*"
	# A session of its own (see the header): the terminal's Ctrl-C is not sent
	# to mcproxy; this script's one SIGTERM is. This shell has no job control,
	# so the background child is no group leader and setsid execs mcproxy in
	# place: $! is mcproxy's PID.
	local session=()
	if command -v setsid >/dev/null 2>&1; then session=(setsid); fi
	"${session[@]}" "$MCPROXY" -config "$CONFIG" -log-format console "$@" &
	mcproxy_pid=$!
	if [[ -n $listen_port ]]; then
		wait_listening "$mcproxy_pid" "$listen_port" "mcproxy"
		log "ready; try: printf 'set a 0 0 1\\r\\nx\\r\\nget a\\r\\n' | nc -q1 127.0.0.1 $listen_port"
	fi
	log "Ctrl-C stops mcproxy (it drains) and the memcached backends; edits of $CONFIG apply live"

	# Wait for mcproxy; a signal to this script interrupts the wait and runs the traps.
	local status=0
	wait "$mcproxy_pid" || status=$?
	mcproxy_pid=""
	log "mcproxy exited with status $status"
	return "$status"
}

main "$@"
