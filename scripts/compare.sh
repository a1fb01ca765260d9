#!/usr/bin/env bash
# Side-by-side benchmark, the way users compare proxies: the same mcbench
# workloads against direct memcached, twemproxy (nutcracker) and mcproxy, in
# rounds that alternate between the targets, then per workload the medians of
# keys/s, p50/p99/p99.9 latency, and each target process's CPU time per key and
# read/write syscalls per request (from /proc/PID/stat and /proc/PID/io, which
# are steadier than throughput on a noisy machine), with the ratios between them;
# against twemproxy also round by round (the middle half of the per-round ratios),
# which shows how far a ratio of medians could move on this machine.
#
# It measures two placements in one run, each with its own processes:
#   pinned    mcbench on CPU 0, every server on the other CPUs (taskset), so
#             load generator and targets do not compete for a CPU
#   unpinned  no taskset, as users deploy: the scheduler places mcbench and the
#             servers, which share the host as a sidecar shares it with its
#             clients
# In each, mcproxy runs twice in front of the same three memcached: "mcproxy"
# at its defaults (event_loops 0: up to one loop per CPU it may run on, as
# many awake as the load needs; the report shows those awake as each run
# ended, from stats' event_loops_awake) and
# "mcproxy-1loop" with event_loops: 1, so the report can say which one is the
# efficient choice on this machine.
#
# Per placement it starts three memcached on free loopback ports, nutcracker in
# front of them (ketama, fnv1a_64, weights 1, no ejection) and the mcproxy
# targets in front of the same three, all on 127.0.0.1. "memcached" is the first
# of the three, addressed directly (its CPU column is that one memcached's).
# Each target is prefilled once per workload, then every round runs each target
# of both placements for DURATION (after WARMUP), in an order that rotates from
# round to round. It stops only the processes it started, by PID, when it exits
# (also on Ctrl-C).
#
# Usage: scripts/compare.sh                   (from anywhere in the repo)
#        make compare                         (builds bin/mcproxy first)
#        make compare DOC=docs/benchmarks.md  (also writes the page and its chart)
#
# Environment:
#   MCPROXY            mcproxy binary (go build -o bin/mcproxy ./cmd/mcproxy);
#                      unset: mcproxy is skipped with a warning
#   MCBENCH            mcbench binary (default: built from ./cmd/mcbench into a temp dir)
#   ROUNDS             rounds of all targets per workload    (default 3)
#   DURATION           measured time of one run              (default 4s)
#   WARMUP             unmeasured load before each run       (default 1s)
#   WORKLOADS          workloads, "name=mcbench flags" separated by ';' (default:
#                      the five below); MCBENCH_ARGS, when set, is one workload
#   MEMCACHED_MB       memory of each memcached              (default 64)
#   MEMCACHED_THREADS  worker threads of each memcached      (default 1)
#   PLACEMENTS         "pinned unpinned" (default), or one of them
#   PIN                1: PLACEMENTS=pinned, 0: PLACEMENTS=unpinned (the old switch)
#   DOC                write this markdown page (and a .svg chart beside it)
#   KEEP               1: keep the temp dir (configs, logs, raw results)
#   BASELINE           another mcproxy binary (e.g. main before a change), run
#                      beside MCPROXY as the target "baseline", same config as
#                      "mcproxy", so a change is measured before and after in one run
#   REPLICAS           2..4: also run "mcproxy-rN", mcproxy at its defaults with
#                      replicas: N (docs/replicas.md), to price copies; the
#                      "sets, 1 in flight" workload shows what a write costs
#   LOOPS              loop counts, e.g. "2 4": also run mcproxy with event_loops
#                      set to each, as the target "mcproxy-Nloops" (docs/scaling.md)
#   TLS                1: also the TLS targets, in each placement: "memcached-tls",
#                      the first of three more memcached, these with TLS on
#                      (-Z, client certificates required, session cache),
#                      addressed directly; and "mcproxy-tls", mcproxy's TLS
#                      listener (client certificates required) in front of
#                      those three over TLS: mutual TLS on both sides. mcbench
#                      speaks TLS to both. Certificates are made with openssl.
#   NEW_CLIENT_EVERY   how often a new client connects during each measured run,
#                      asks "version" and leaves; the page shows the time from
#                      its dial to the reply (default 20ms; 0s: off)
#   METRICS            1: also run a second mcproxy, "mcproxy+m", with its admin
#                      endpoint on (per-command latency histograms recorded) and
#                      /metrics scraped every second, to price metrics
#
# mcbench runs with GOMAXPROCS=1 in both placements, so its own cost is the
# same. The default run (6 workloads x 3 rounds x 8 targets x 5s, plus
# prefills) takes about 11 minutes.
#
# Note: on a small machine mcbench competes with the targets for CPU (unpinned,
# by design); the figures compare targets under the same handicap, they are not
# absolute capacities.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4s}
WARMUP=${WARMUP:-1s}
common="-ratio 9:1 -keys 100000"
default_workloads="single get, 1 in flight=-conns 50 -pipeline 1 -value-size 100 $common"
default_workloads+=";single get, 16 in flight=-conns 50 -pipeline 16 -value-size 100 $common"
default_workloads+=";get of 10 keys, 1 in flight=-conns 50 -pipeline 1 -multiget 10 -value-size 100 $common"
default_workloads+=";4 KB values, 1 in flight=-conns 50 -pipeline 1 -value-size 4096 $common"
default_workloads+=";light load: 1 conn, 1 in flight=-conns 1 -pipeline 1 -value-size 100 $common"
default_workloads+=";sets, 1 in flight=-conns 50 -pipeline 1 -value-size 100 -ratio 0:1 -keys 100000"
if [[ -n ${MCBENCH_ARGS:-} ]]; then default_workloads="custom=$MCBENCH_ARGS"; fi
WORKLOADS=${WORKLOADS:-$default_workloads}
MEMCACHED_MB=${MEMCACHED_MB:-64}
MEMCACHED_THREADS=${MEMCACHED_THREADS:-1}
case ${PIN:-} in
1) default_placements=pinned ;;
0) default_placements=unpinned ;;
*) default_placements="pinned unpinned" ;;
esac
PLACEMENTS=${PLACEMENTS:-$default_placements}
KEEP=${KEEP:-0}
NEW_CLIENT_EVERY=${NEW_CLIENT_EVERY:-20ms}
DOC=${DOC:-}

log() { printf 'compare: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# The processes this script started; only these are ever signalled.
pids=()
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mcbench-compare.XXXXXX")

cleanup() {
	local status=$? pid
	trap - EXIT INT TERM HUP
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ $KEEP == 1 ]]; then
		log "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	if [[ -n $certs ]]; then rm -rf "$certs"; fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

ncpu=$(nproc)
read -r -a placements <<<"$PLACEMENTS"
((${#placements[@]} > 0)) || die "PLACEMENTS is empty"
for place in "${placements[@]}"; do
	case $place in
	pinned)
		command -v taskset >/dev/null || die "the pinned placement needs taskset (util-linux)"
		((ncpu >= 2)) || die "the pinned placement needs at least 2 CPUs, have $ncpu (PLACEMENTS=unpinned)"
		;;
	unpinned) ;;
	*) die "PLACEMENTS: unknown placement \"$place\" (pinned, unpinned)" ;;
	esac
done

# place_cpus PLACEMENT: set bench_cpu and server_cpu, the command prefixes that
# place mcbench and the servers. mcbench gets one Go thread either way.
bench_cpu=() server_cpu=()
place_cpus() {
	if [[ $1 == pinned ]]; then
		bench_cpu=(env GOMAXPROCS=1 taskset -c 0)
		server_cpu=(taskset -c "1-$((ncpu - 1))")
	else
		bench_cpu=(env GOMAXPROCS=1)
		server_cpu=()
	fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a loopback port nobody listens on and that we have not handed out.
used_ports=" "
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+), so no client socket holds it
		[[ $used_ports == *" $port "* ]] && continue
		port_open "$port" && continue
		used_ports+="$port "
		echo "$port"
		return
	done
}

# start NAME PORT CMD...: run CMD in the background under server_cpu, remember
# its PID and wait up to 5s for PORT to accept connections.
start() {
	local name=$1 port=$2 logf="$tmp/${1//\//-}.log" n
	shift 2
	"${server_cpu[@]}" "$@" >>"$logf" 2>&1 &
	pids+=("$!")
	for ((n = 0; n < 50; n++)); do
		if port_open "$port"; then
			log "$name (pid $!) listening on 127.0.0.1:$port"
			return 0
		fi
		kill -0 "$!" 2>/dev/null || die "$name exited at start; see its log:$(printf '\n'; tail -n 5 "$logf")"
		sleep 0.1
	done
	die "$name (pid $!) is not listening on port $port after 5s"
}

# ---- binaries ----------------------------------------------------------------

command -v memcached >/dev/null || die "memcached not found (apt-get install memcached)"
command -v nutcracker >/dev/null || die "nutcracker not found (apt-get install nutcracker)"
if [[ -z ${MCBENCH:-} ]]; then
	MCBENCH=$tmp/mcbench
	log "building mcbench"
	go build -o "$MCBENCH" ./cmd/mcbench
fi
if [[ -z ${MCPROXY:-} ]]; then
	log "warning: MCPROXY is not set; skipping mcproxy (build it: go build -o bin/mcproxy ./cmd/mcproxy)"
elif [[ ! -x $MCPROXY ]]; then
	die "MCPROXY=$MCPROXY is not an executable file"
fi
if [[ -n ${BASELINE:-} && ! -x $BASELINE ]]; then
	die "BASELINE=$BASELINE is not an executable file"
fi

# ---- targets -----------------------------------------------------------------

# One entry per target, both placements in one list: its name, placement,
# address, the PID whose CPU and syscalls are measured, and for mcproxy the
# event loops it runs (0 for the others).
names=() places=() addrs=() tpids=() loops=() targs=()

# add_target NAME PLACEMENT ADDR [LOOPS [MCBENCH ARGS]]: record the process
# started last as a target; MCBENCH ARGS are extra flags of every run against it.
add_target() {
	names+=("$1")
	places+=("$2")
	addrs+=("$3")
	tpids+=("${pids[-1]}")
	loops+=("${4:-0}")
	targs+=("${5:-}")
}

# make_certs: a CA and one certificate for 127.0.0.1 it signed, for servers
# and clients alike, in $certs (readable by memcached's user).
certs=
make_certs() {
	certs=$(mktemp -d "${TMPDIR:-/tmp}/mcbench-certs.XXXXXX")
	chmod 755 "$certs"
	local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	openssl req -x509 "${ec[@]}" -days 2 -subj /CN=compare-ca -keyout "$certs/ca.key" -out "$certs/ca.crt" 2>/dev/null
	openssl req "${ec[@]}" -subj /CN=127.0.0.1 -keyout "$certs/tls.key" -out "$certs/tls.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$certs/ext.cnf"
	openssl x509 -req -in "$certs/tls.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" -CAcreateserial \
		-days 2 -extfile "$certs/ext.cnf" -out "$certs/tls.crt" 2>/dev/null
	chmod 644 "$certs"/*
}

# set_mc_args PORT: mc_args, the arguments of one memcached on PORT.
mc_args=()
set_mc_args() {
	mc_args=(-l 127.0.0.1 -p "$1" -U 0 -m "$MEMCACHED_MB" -t "$MEMCACHED_THREADS")
	# memcached refuses to run as root unless told which user to become.
	if [[ $(id -u) -eq 0 ]]; then mc_args+=(-u nobody); fi
}

# start_tls_targets PLACEMENT: three memcached -Z, the first a target, and
# mcproxy-tls in front of them, TLS on both sides.
start_tls_targets() {
	local place=$1 i port tls_backends=() b
	local files="-tls-ca $certs/ca.crt -tls-cert $certs/tls.crt -tls-key $certs/tls.key"
	for i in 1 2 3; do
		port=$(free_port)
		set_mc_args "$port"
		start "$place/memcached-tls$i" "$port" memcached "${mc_args[@]}" -Z \
			-o "ssl_chain_cert=$certs/tls.crt,ssl_key=$certs/tls.key,ssl_ca_cert=$certs/ca.crt,ssl_verify_mode=2,ssl_session_cache"
		tls_backends+=("127.0.0.1:$port")
		if ((i == 1)); then add_target memcached-tls "$place" "127.0.0.1:$port" 0 "$files"; fi
	done
	[[ -n ${MCPROXY:-} ]] || return 0
	port=$(free_port)
	{
		echo 'listen: ""'
		echo "tls: {listen: 127.0.0.1:$port, cert_file: $certs/tls.crt, key_file: $certs/tls.key, client_ca_file: $certs/ca.crt}"
		echo "backend: {tls: {enabled: true, ca_file: $certs/ca.crt, cert_file: $certs/tls.crt, key_file: $certs/tls.key}}"
		echo "backends:"
		for b in "${tls_backends[@]}"; do echo "  - addr: $b"; done
	} >"$tmp/$place-mcproxy-tls.yml"
	start "$place/mcproxy-tls" "$port" "$MCPROXY" -config "$tmp/$place-mcproxy-tls.yml" -log-level warn
	add_target mcproxy-tls "$place" "127.0.0.1:$port" "$defloops" "$files"
}

# start_mcproxy NAME PLACEMENT BINARY LOOPS [CONFIG LINES...]: an mcproxy in
# front of this placement's backends, with extra top-level config lines; LOOPS
# is the event loops that config runs here.
start_mcproxy() {
	local name=$1 place=$2 bin=$3 nloops=$4 port b
	shift 4
	port=$(free_port)
	{
		echo "listen: 127.0.0.1:$port"
		printf '%s\n' "$@"
		echo "backends:"
		for b in "${backends[@]}"; do echo "  - addr: $b"; done
	} >"$tmp/$place-$name.yml"
	start "$place/$name" "$port" "$bin" -config "$tmp/$place-$name.yml" -log-level warn
	add_target "$name" "$place" "127.0.0.1:$port" "$nloops"
}

# start_targets PLACEMENT: three memcached, twemproxy and the mcproxy targets,
# all placed as PLACEMENT says.
start_targets() {
	local place=$1 i port tw_port admin
	defloops=$ncpu
	place_cpus "$place"
	# event_loops 0 is one loop per CPU the process may run on (GOMAXPROCS).
	if [[ $place == pinned ]]; then defloops=$((ncpu - 1)); fi
	backends=()
	for i in 1 2 3; do
		port=$(free_port)
		set_mc_args "$port"
		start "$place/memcached$i" "$port" memcached "${mc_args[@]}"
		backends+=("127.0.0.1:$port")
		if ((i == 1)); then add_target memcached "$place" "127.0.0.1:$port"; fi
	done

	tw_port=$(free_port)
	cat >"$tmp/$place-twemproxy.yml" <<-YML
		mcbench:
		  listen: 127.0.0.1:$tw_port
		  hash: fnv1a_64
		  distribution: ketama
		  timeout: 1000
		  auto_eject_hosts: false
		  servers:
		$(for b in "${backends[@]}"; do echo "    - $b:1"; done)
	YML
	start "$place/twemproxy" "$tw_port" nutcracker -c "$tmp/$place-twemproxy.yml" \
		-s "$(free_port)" -a 127.0.0.1 -o "$tmp/$place-twemproxy.log" -v 4
	add_target twemproxy "$place" "127.0.0.1:$tw_port"

	if [[ ${TLS:-0} == 1 ]]; then start_tls_targets "$place"; fi
	[[ -n ${MCPROXY:-} ]] || return 0
	start_mcproxy mcproxy "$place" "$MCPROXY" "$defloops"
	start_mcproxy mcproxy-1loop "$place" "$MCPROXY" 1 "event_loops: 1"
	if [[ -n ${BASELINE:-} ]]; then start_mcproxy baseline "$place" "$BASELINE" "$defloops"; fi
	if [[ -n ${REPLICAS:-} ]]; then start_mcproxy "mcproxy-r$REPLICAS" "$place" "$MCPROXY" "$defloops" "replicas: $REPLICAS"; fi
	for i in ${LOOPS:-}; do start_mcproxy "mcproxy-${i}loops" "$place" "$MCPROXY" "$i" "event_loops: $i"; done
	if [[ ${METRICS:-0} == 1 ]]; then
		admin=$(free_port)
		start_mcproxy mcproxy+m "$place" "$MCPROXY" "$defloops" "admin: 127.0.0.1:$admin"
		# A Prometheus-like scraper, ended with the other processes on exit.
		(while sleep 1; do
			curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$admin/metrics" || true
		done) &
		pids+=("$!")
	fi
}

if [[ ${TLS:-0} == 1 ]]; then
	command -v openssl >/dev/null || die "TLS=1 needs openssl to make the certificates"
	make_certs
fi
defloops=0 # mcproxy's event loops at its defaults; start_targets sets it per placement
for place in "${placements[@]}"; do start_targets "$place"; done

# ---- runs --------------------------------------------------------------------

# field NAME: the value of a number or string field of mcbench's one-line JSON
# on stdin; 0 when the JSON has no such field (mcbench leaves out a zero CPU
# time, as of a target that timed out throughout).
field() { sed -E -n 's/.*"'"$1"'":"?([^,"}]*)"?.*/\1/p' | grep . || echo 0; }

# awake_loops ADDR: the event loops an mcproxy at ADDR has awake now
# (event_loops_awake in its stats), or nothing for a target without that
# stat (twemproxy, memcached, an mcproxy from before the loop balancer).
awake_loops() {
	local fd line
	exec {fd}<>"/dev/tcp/${1%:*}/${1##*:}" 2>/dev/null || return 0
	printf 'stats\r\nquit\r\n' >&"$fd"
	while IFS= read -r -t 2 line <&"$fd"; do
		line=${line%$'\r'}
		if [[ $line == "STAT event_loops_awake "* ]]; then echo "${line##* }"; fi
		if [[ $line == END ]]; then break; fi
	done
	exec {fd}>&-
}

# bench I ARGS...: one mcbench run against target I, placed as the target is;
# prints its JSON line. A run that counted errors (exit 1) still counts; one
# that could not start (exit 2) fails.
bench() {
	local i=$1 rc=0 extra
	shift
	place_cpus "${places[$i]}"
	read -r -a extra <<<"${targs[$i]}"
	"${bench_cpu[@]}" "$MCBENCH" -addr "${addrs[$i]}" "${bench_args[@]}" "${extra[@]}" -json "$@" || rc=$?
	((rc <= 1))
}

results=$tmp/results.jsonl
: >"$results"
IFS=';' read -r -a workloads <<<"$WORKLOADS"
n=${#names[@]}
log "$ROUNDS rounds x $n targets (${placements[*]}) x ${#workloads[@]} workloads x $DURATION (+$WARMUP warmup)"
# cpu_steal prints the host's CPU time so far as "steal total" in ticks
# (/proc/stat): on a virtual machine, time its CPUs were runnable but the
# hypervisor ran something else, which slows every target by chance.
cpu_steal() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t }' /proc/stat; }
read -r steal0 total0 < <(cpu_steal)
for wl in "${workloads[@]}"; do
	wname=${wl%%=*}
	read -r -a bench_args <<<"${wl#*=}"
	log "workload \"$wname\": ${wl#*=}"
	for i in "${!names[@]}"; do
		out=$(bench "$i" -prefill -duration 1s) || die "mcbench could not run against ${places[$i]}/${names[$i]}"
	done
	printf '%-6s %-9s %-14s %12s %10s %10s %10s %8s %8s\n' round placement target keys/s p50_us p99_us cpu_us/key sys/req errors
	for ((r = 1; r <= ROUNDS; r++)); do
		for ((k = 0; k < n; k++)); do
			i=$(((r - 1 + k) % n)) # rotate the order so no target always goes first
			out=$(bench "$i" -duration "$DURATION" -warmup "$WARMUP" -pid "${tpids[$i]}" -new-client-every "$NEW_CLIENT_EVERY") ||
				die "mcbench could not run against ${places[$i]}/${names[$i]}"
			# The loops it ran: those awake as the run ended, where mcproxy
			# says (with event_loops at 0 it wakes only those the load needs).
			nloops=$(awake_loops "${addrs[$i]}")
			printf '{"placement":"%s","workload":"%s","target":"%s","round":%d,"event_loops":%d,"run":%s}\n' \
				"${places[$i]}" "$wname" "${names[$i]}" "$r" "${nloops:-${loops[$i]}}" "$out" >>"$results"
			printf '%-6s %-9s %-14s %12.0f %10.1f %10.1f %10.2f %8.2f %8s\n' "$r" "${places[$i]}" "${names[$i]}" \
				"$(field keys_per_sec <<<"$out")" "$(field p50_us <<<"$out")" "$(field p99_us <<<"$out")" \
				"$(field cpu_us_per_key <<<"$out")" "$(field syscalls_per_op <<<"$out")" "$(field errors <<<"$out")"
			err=$(field first_error <<<"$out")
			if [[ $err != 0 ]]; then log "${places[$i]}/${names[$i]}: first error: $err"; fi
		done
	done
done

# ---- summary -----------------------------------------------------------------

echo
read -r steal1 total1 < <(cpu_steal)
steal_pct=$(awk -v s=$((steal1 - steal0)) -v t=$((total1 - total0)) 'BEGIN { printf "%.1f", (t > 0 ? 100 * s / t : 0) }')
echo "medians over $ROUNDS alternating rounds, $DURATION each; CPU steal during the run: $steal_pct%:"
"$MCBENCH" -report "$results"

if [[ -n $DOC ]]; then
	svg=${DOC%.md}.svg
	{
		echo "# Benchmarks: mcproxy beside twemproxy and memcached"
		echo
		echo "Generated by \`make compare DOC=$DOC\` (scripts/compare.sh) on $(date -u +%Y-%m-%d)."
		echo "Do not edit by hand: run it again."
		echo
		echo "- machine: $ncpu CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(uname -sr)"
		echo "- memcached $(memcached -V | cut -d' ' -f2) x3 (\`-t $MEMCACHED_THREADS -m $MEMCACHED_MB\`), nutcracker $(nutcracker -V 2>&1 | sed -n 's/.*-\([0-9.]*\)$/\1/p' | head -n 1), mcproxy $("$MCPROXY" -version 2>/dev/null | cut -d' ' -f2), $(go version | cut -d' ' -f3)"
		echo "- $ROUNDS rounds per workload, all targets of both placements alternating, $DURATION measured after $WARMUP warmup; mcbench with GOMAXPROCS=1"
		echo "- CPU steal over the whole run (\`/proc/stat\`: time the virtual machine's CPUs waited for the hypervisor): $steal_pct% of CPU time; above a few percent the figures of one target can move by chance from round to round"
		server_cpus="CPUs 1-$((ncpu - 1))" pinned_loops="$((ncpu - 1)) event loops"
		if ((ncpu == 2)); then server_cpus="CPU 1" pinned_loops="1 event loop"; fi
		echo "- placements, each with its own processes: **pinned**: mcbench on CPU 0, every server on $server_cpus (taskset), so they do not compete; mcproxy's defaults then run $pinned_loops at most. **unpinned**: no taskset, as users deploy (a sidecar shares its host with its clients); mcproxy's defaults run up to $ncpu event loops"
		echo "- targets: \`mcproxy\` is mcproxy at its defaults (\`event_loops: 0\`: up to one loop per CPU it may run on, as many awake as the load needs; a table's \"(1 loop)\" is the loops awake as the runs ended, from its \`stats\`), \`mcproxy-1loop\` the same with \`event_loops: 1\`; \`memcached\` is the first of the three backends, addressed directly"
		echo "- CPU µs/key and syscalls/req are the target process's own (utime+stime from /proc/PID/stat, syscr+syscw from /proc/PID/io) over the measured phase. syscr/syscw count read(2)/write(2)-family calls; memcached answers with sendmsg(2), which they do not count."
		if [[ ${TLS:-0} == 1 ]]; then
			echo "- TLS targets (\`TLS=1\`): \`memcached-tls\` is the first of three more memcached with TLS on (\`-Z\`, client certificates required, \`ssl_session_cache\`), addressed directly; \`mcproxy-tls\` is mcproxy's TLS listener (client certificates required) in front of those three over TLS. mcbench speaks TLS 1.3 to both with a client certificate (ECDSA P-256, made with openssl). Their CPU per key is set beside memcached-tls's, not twemproxy's (it has no TLS), and the chart leaves them out."
		fi
		if [[ $NEW_CLIENT_EVERY != 0* ]]; then
			echo "- new client: during every measured run a new client connects every $NEW_CLIENT_EVERY, asks \`version\` and leaves; its columns are the time from its dial to the reply (medians of each run's p50 and p99). A proxy whose busy event loop keeps its acceptor off the CPU makes new clients wait while connected ones are served"
		fi
		echo "- each ratio to twemproxy is of medians; beside it, \"round by round\" is the middle half of the ratios of each round's runs, which differ from round to round on a shared machine: a bound inside that range is neither clearly met nor clearly missed"
		echo "- where this page's figures are quoted (docs/design.md; the README quotes none), the placement is named. How CPU per key and throughput change with loops and cores, measured here and modelled for 16 cores: [scaling.md](scaling.md)."
		echo
		echo "![keys/s and CPU per key relative to twemproxy, pinned and unpinned]($(basename "$svg"))"
		echo
		"$MCBENCH" -report "$results" -svg "$svg"
	} >"$DOC.tmp"
	mv "$DOC.tmp" "$DOC"
	log "wrote $DOC and $svg"
fi
