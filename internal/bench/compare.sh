#!/usr/bin/env bash
# Side-by-side benchmark: the same mcbench workload against direct memcached,
# twemproxy (nutcracker) and mcproxy, in alternating rounds, then the median
# ops/s and p99 latency per target and the ratios between them.
#
# It starts three memcached on free loopback ports, nutcracker in front of them
# (ketama, fnv1a_64, weights 1, no ejection) and mcproxy in front of the same
# three, all on 127.0.0.1. "memcached" is the first of the three, addressed
# directly. Each target is prefilled once, then every round runs each target for
# DURATION (after WARMUP), in an order that rotates from round to round. It stops
# only the processes it started, by PID, when it exits (also on Ctrl-C).
#
# Usage: internal/bench/compare.sh            (from anywhere in the repo)
#        make compare                         (builds bin/mcproxy first)
#
# Environment:
#   MCPROXY            mcproxy binary (go build -o bin/mcproxy ./cmd/mcproxy);
#                      unset: mcproxy is skipped with a warning
#   MCBENCH            mcbench binary (default: built from ./cmd/mcbench into a temp dir)
#   ROUNDS             rounds of all targets                 (default 5)
#   DURATION           measured time of one run              (default 5s)
#   WARMUP             unmeasured load before each run       (default 1s)
#   MCBENCH_ARGS       the workload, mcbench flags           (default
#                      "-conns 50 -pipeline 1 -ratio 9:1 -keys 100000 -value-size 100")
#   MEMCACHED_MB       memory of each memcached              (default 64)
#   MEMCACHED_THREADS  worker threads of each memcached      (default 4, memcached's own)
#   PIN                1: run mcbench on CPU 0 and every server on the other CPUs
#                      (taskset), so load generator and targets do not compete
#   KEEP               1: keep the temp dir (configs, logs, raw results)
#   METRICS            1: also run a second mcproxy, "mcproxy+m", with its admin
#                      endpoint on (per-command latency histograms recorded) and
#                      /metrics scraped every second, to price metrics
#
# Note: on a small machine mcbench competes with the targets for CPU; the figures
# compare targets under the same handicap, they are not absolute capacities.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
MCBENCH_ARGS=${MCBENCH_ARGS:-"-conns 50 -pipeline 1 -ratio 9:1 -keys 100000 -value-size 100"}
MEMCACHED_MB=${MEMCACHED_MB:-64}
MEMCACHED_THREADS=${MEMCACHED_THREADS:-4}
PIN=${PIN:-0}
KEEP=${KEEP:-0}
read -r -a bench_args <<<"$MCBENCH_ARGS"

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
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Optional CPU pinning: mcbench on CPU 0, servers on the rest.
bench_cpu=() server_cpu=()
if [[ $PIN == 1 ]]; then
	ncpu=$(nproc)
	command -v taskset >/dev/null || die "PIN=1 needs taskset (util-linux)"
	((ncpu >= 2)) || die "PIN=1 needs at least 2 CPUs, have $ncpu"
	bench_cpu=(taskset -c 0)
	server_cpu=(taskset -c "1-$((ncpu - 1))")
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a loopback port nobody listens on and that we have not handed out.
used_ports=" "
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 40000))
		[[ $used_ports == *" $port "* ]] && continue
		port_open "$port" && continue
		used_ports+="$port "
		echo "$port"
		return
	done
}

# start NAME PORT CMD...: run CMD in the background, remember its PID and wait
# up to 5s for PORT to accept connections.
start() {
	local name=$1 port=$2 n
	shift 2
	"${server_cpu[@]}" "$@" >>"$tmp/$name.log" 2>&1 &
	pids+=("$!")
	for ((n = 0; n < 50; n++)); do
		if port_open "$port"; then
			log "$name (pid $!) listening on 127.0.0.1:$port"
			return 0
		fi
		kill -0 "$!" 2>/dev/null || die "$name exited at start; see its log:$(printf '\n'; tail -n 5 "$tmp/$name.log")"
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

# ---- targets -----------------------------------------------------------------

backends=()
for i in 1 2 3; do
	port=$(free_port)
	mc_args=(-l 127.0.0.1 -p "$port" -U 0 -m "$MEMCACHED_MB" -t "$MEMCACHED_THREADS")
	# memcached refuses to run as root unless told which user to become.
	if [[ $(id -u) -eq 0 ]]; then mc_args+=(-u nobody); fi
	start "memcached$i" "$port" memcached "${mc_args[@]}"
	backends+=("127.0.0.1:$port")
done

names=(memcached twemproxy)
addrs=("${backends[0]}")

tw_port=$(free_port)
cat >"$tmp/twemproxy.yml" <<EOF
mcbench:
  listen: 127.0.0.1:$tw_port
  hash: fnv1a_64
  distribution: ketama
  timeout: 1000
  auto_eject_hosts: false
  servers:
$(for b in "${backends[@]}"; do echo "    - $b:1"; done)
EOF
start twemproxy "$tw_port" nutcracker -c "$tmp/twemproxy.yml" \
	-s "$(free_port)" -a 127.0.0.1 -o "$tmp/twemproxy.log" -v 4
addrs+=("127.0.0.1:$tw_port")

if [[ -n ${MCPROXY:-} ]]; then
	mp_port=$(free_port)
	cat >"$tmp/mcproxy.yml" <<EOF
listen: 127.0.0.1:$mp_port
backends:
$(for b in "${backends[@]}"; do echo "  - addr: $b"; done)
EOF
	start mcproxy "$mp_port" "$MCPROXY" -config "$tmp/mcproxy.yml" -log-level warn
	names+=(mcproxy)
	addrs+=("127.0.0.1:$mp_port")
	if [[ ${METRICS:-0} == 1 ]]; then
		mm_port=$(free_port)
		mm_admin=$(free_port)
		cat >"$tmp/mcproxy-m.yml" <<EOF
listen: 127.0.0.1:$mm_port
admin: 127.0.0.1:$mm_admin
backends:
$(for b in "${backends[@]}"; do echo "  - addr: $b"; done)
EOF
		start mcproxy+m "$mm_port" "$MCPROXY" -config "$tmp/mcproxy-m.yml" -log-level warn
		names+=(mcproxy+m)
		addrs+=("127.0.0.1:$mm_port")
		# A Prometheus-like scraper, ended with the other processes on exit.
		(while sleep 1; do
			curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$mm_admin/metrics" || true
		done) &
		pids+=("$!")
	fi
fi

# ---- runs --------------------------------------------------------------------

# field NAME: the value of a number or string field of mcbench's one-line JSON on stdin.
field() { sed -E 's/.*"'"$1"'":"?([^,"}]*)"?.*/\1/'; }

# bench ADDR ARGS...: one mcbench run; prints its JSON line. A run that counted
# errors (exit 1) still counts; one that could not start (exit 2) fails.
bench() {
	local addr=$1 rc=0
	shift
	"${bench_cpu[@]}" "$MCBENCH" -addr "$addr" "${bench_args[@]}" -json "$@" || rc=$?
	((rc <= 1))
}

log "workload: $MCBENCH_ARGS; $ROUNDS rounds x ${#names[@]} targets x $DURATION (+$WARMUP warmup)"
for i in "${!names[@]}"; do
	out=$(bench "${addrs[$i]}" -prefill -duration 1s) || die "mcbench could not run against ${names[$i]}"
	log "prefilled ${names[$i]}: $(field prefilled <<<"$out") keys, $(field prefill_errors <<<"$out") failed"
done

printf '%-6s %-10s %12s %10s %10s %8s\n' round target ops/s p50_us p99_us errors
n=${#names[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	for ((k = 0; k < n; k++)); do
		i=$(((r - 1 + k) % n)) # rotate the order so no target always goes first
		out=$(bench "${addrs[$i]}" -duration "$DURATION" -warmup "$WARMUP") ||
			die "mcbench could not run against ${names[$i]}"
		echo "${names[$i]} $out" >>"$tmp/results.txt"
		printf '%-6s %-10s %12.0f %10.1f %10.1f %8s\n' "$r" "${names[$i]}" \
			"$(field ops_per_sec <<<"$out")" "$(field p50_us <<<"$out")" \
			"$(field p99_us <<<"$out")" "$(field errors <<<"$out")"
		err=$(field first_error <<<"$out")
		if [[ $err != "$out" ]]; then log "${names[$i]}: first error: $err"; fi
	done
done

# ---- summary -----------------------------------------------------------------

# median TARGET FIELD: the median of FIELD over TARGET's runs.
median() {
	grep "^$1 " "$tmp/results.txt" | cut -d' ' -f2- | field "$2" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
total() {
	grep "^$1 " "$tmp/results.txt" | cut -d' ' -f2- | field "$2" | awk '{ s += $1 } END { print s + 0 }'
}

declare -A ops p99
echo
echo "median over $ROUNDS rounds ($MCBENCH_ARGS, $DURATION each):"
printf '%-10s %12s %10s %10s %8s\n' target ops/s p50_us p99_us errors
for name in "${names[@]}"; do
	ops[$name]=$(median "$name" ops_per_sec)
	p99[$name]=$(median "$name" p99_us)
	printf '%-10s %12.0f %10.1f %10.1f %8s\n' "$name" "${ops[$name]}" \
		"$(median "$name" p50_us)" "${p99[$name]}" "$(total "$name" errors)"
done

# ratio A B: A's median ops/s and p99 relative to B's.
ratio() {
	awk -v a="$1" -v b="$2" -v oa="${ops[$1]}" -v ob="${ops[$2]}" -v pa="${p99[$1]}" -v pb="${p99[$2]}" \
		'BEGIN { printf "%-22s ops/s x%.2f   p99 x%.2f\n", a "/" b, oa / ob, pa / pb }'
}
echo
ratio twemproxy memcached
if [[ -n ${ops[mcproxy]:-} ]]; then
	ratio mcproxy memcached
	ratio mcproxy twemproxy
	if [[ -n ${ops[mcproxy+m]:-} ]]; then ratio mcproxy+m mcproxy; fi
else
	log "mcproxy was skipped (MCPROXY unset): no mcproxy ratios"
fi
