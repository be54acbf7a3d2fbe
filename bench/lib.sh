# Shared helpers for bench/*.sh: process bookkeeping, bounded waits, /proc sampling, templates,
# load generators (sockperf, iperf3, wrk) and the results format every benchmark writes (see
# bench/README.md). Source it; do not run it.
# shellcheck shell=bash

BENCH_PIDS=()
BENCH_TMP=""

bench_log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
bench_warn() { printf '[%(%H:%M:%S)T] WARNING: %s\n' -1 "$*" >&2; }
bench_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

bench_require() {
  local tool missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  ((${#missing[@]} == 0)) || bench_die "missing tools: ${missing[*]} (see bench/README.md)"
}

# A fresh private directory, removed by bench_cleanup.
bench_make_tmp() {
  BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench-$1.XXXXXX")
}

# bench_spawn LOGFILE CMD...: start CMD in the background, remember its pid for cleanup.
# The pid is left in BENCH_LAST_PID (a command substitution would lose the child).
bench_spawn() {
  local logfile=$1
  shift
  "$@" >"$logfile" 2>&1 &
  BENCH_LAST_PID=$!
  BENCH_PIDS+=("$BENCH_LAST_PID")
}

# Stop one process we started: TERM, up to 5 s of grace, then KILL. Only ever our own pids.
bench_stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=() p
  for p in "${BENCH_PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
  BENCH_PIDS=("${kept[@]}")
}

bench_stop_all() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${BENCH_PIDS[@]}"; do bench_stop "$pid"; done
  BENCH_PIDS=()
}

bench_cleanup() {
  bench_stop_all
  if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then rm -rf -- "$BENCH_TMP"; fi
}

# bench_wait_until SECONDS CMD...: poll CMD every 100 ms until it succeeds or the deadline passes.
# Used for process start-up only, where there is no event to wait on.
bench_wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

bench_is_listening() { [[ -n $(ss -Htln "src = $1:$2" 2>/dev/null) ]]; }
bench_http_ok() { curl -fsS -m 1 -o /dev/null "$1"; }
bench_alive() { kill -0 "$1" 2>/dev/null; }

# Established TCP connections whose local end is ADDR:PORT.
bench_established_count() { ss -Htn state established "src = $1:$2" 2>/dev/null | wc -l; }

# Resident set size of one process in KiB (VmRSS: all threads share it).
bench_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# utime + stime of one process (all its threads) in clock ticks.
bench_cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) } # the command name may hold spaces; fields restart after it at "state"
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${12} + ${13}))
}

# Sum of a per-process figure over several pids: bench_sum FUNC PID...
bench_sum() {
  local fn=$1 total=0 pid value
  shift
  for pid in "$@"; do
    value=$("$fn" "$pid") || return 1
    total=$((total + value))
  done
  echo "$total"
}

# bench_render TEMPLATE OUT KEY=VALUE...: replace every @KEY@ in TEMPLATE; fail on leftovers.
bench_render() {
  local template=$1 out=$2 pair args=()
  shift 2
  for pair in "$@"; do args+=(-e "s|@${pair%%=*}@|${pair#*=}|g"); done
  sed "${args[@]}" "$template" >"$out"
  if grep -q '@[A-Z_]*@' "$out"; then bench_die "unfilled placeholder in $out: $(grep -o '@[A-Z_]*@' "$out" | head -1)"; fi
}

# bench_make_certs DIR NAMESPACE NAME...: a throw-away ECDSA P-256 root (DIR/ca.pem) and, per
# NAME, a leaf it signs with the SPIFFE URI spiffe://cluster.local/ns/NAMESPACE/sa/NAME, usable
# as server and as client certificate: DIR/NAME.pem holds certificate and key, as HAProxy reads
# them. The same kind of certificate a ztunnel gets from its CA (see README.md, "tunnel.sh").
bench_make_certs() {
  local dir=$1 ns=$2 name p256=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc)
  shift 2
  mkdir -p "$dir" || return 1
  openssl req -x509 "${p256[@]}" -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 \
    -subj "/O=sluice-bench/CN=bench root" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || return 1
  for name in "$@"; do
    openssl req -x509 -CA "$dir/ca.pem" -CAkey "$dir/ca.key" "${p256[@]}" -keyout "$dir/$name.key" \
      -out "$dir/$name.crt" -days 1 -subj "/O=sluice-bench" \
      -addext "subjectAltName=critical,URI:spiffe://cluster.local/ns/$ns/sa/$name" \
      -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=serverAuth,clientAuth" \
      -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null || return 1
    cat "$dir/$name.crt" "$dir/$name.key" >"$dir/$name.pem"
  done
}

# Load generators. Each takes an optional PREFIX command (e.g. `taskset -c 0`, or
# `sluicectl lab exec POD --`) that the bounded client runs under; each prints its figures on
# stdout, or warns and fails.

# bench_sockperf_rr HOST PORT SECONDS [PREFIX...]: "p50 p99" in microseconds of the full round
# trip of a 64-byte message and its echo on one TCP connection (sockperf ping-pong).
bench_sockperf_rr() {
  local host=$1 port=$2 seconds=$3 out p50 p99
  shift 3
  out=$("$@" timeout $((seconds + 30)) sockperf ping-pong --tcp -i "$host" -p "$port" -m 64 \
    -t "$seconds" --full-rtt 2>&1) || {
    bench_warn "sockperf to $host:$port failed: $(tail -n 3 <<<"$out")"
    return 1
  }
  p50=$(awk '/---> percentile 50.000 =/ { print $NF }' <<<"$out")
  p99=$(awk '/---> percentile 99.000 =/ { print $NF }' <<<"$out")
  [[ -n $p50 && -n $p99 ]] || {
    bench_warn "no percentiles in sockperf output: $(tail -n 3 <<<"$out")"
    return 1
  }
  echo "$p50 $p99"
}

# bench_iperf3 HOST PORT SECONDS [PREFIX...]: "Gbit/s received<TAB>bytes sent" of one TCP stream.
bench_iperf3() {
  local host=$1 port=$2 seconds=$3 out
  shift 3
  out=$("$@" timeout $((seconds + 30)) iperf3 -c "$host" -p "$port" -t "$seconds" -J) || {
    bench_warn "iperf3 to $host:$port failed: $(jq -r '.error // empty' <<<"$out" 2>/dev/null)"
    return 1
  }
  jq -r '[.end.sum_received.bits_per_second / 1e9, .end.sum_sent.bytes] | @tsv' <<<"$out"
}

# bench_wrk_rps URL SECONDS [WRK_OPTION...] [-- PREFIX...]: requests/s of one wrk thread
# (-t1); socket errors and non-2xx answers are reported as a warning.
bench_wrk_rps() {
  local url=$1 seconds=$2 opts=() out rate
  shift 2
  while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
  if (($#)); then shift; fi
  out=$("$@" timeout $((seconds + 30)) wrk -t 1 "${opts[@]}" -d "${seconds}s" "$url" 2>&1) || {
    bench_warn "wrk to $url failed: $(tail -n 3 <<<"$out")"
    return 1
  }
  if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
    bench_warn "wrk to $url: $(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr -s ' ')"
  fi
  rate=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  [[ -n $rate ]] || return 1
  echo "$rate"
}

# Results: one sample per line in a TSV file "system<TAB>metric<TAB>value".
bench_record() { printf '%s\t%s\t%s\n' "$2" "$3" "$4" >>"$1"; }

# bench_results_json SAMPLES NAME RUNS SYSTEMS METRICS: the common results document, with systems
# and metrics in the given (space-separated) order and median/min/max over the runs.
bench_results_json() {
  jq -R -s --arg bench "$2" --argjson runs "$3" --arg systems "$4" --arg metrics "$5" '
    ($systems | split(" ")) as $sys | ($metrics | split(" ")) as $met
    | split("\n") | map(select(length > 0) | split("\t"))
    | group_by(.[0] + "\t" + .[1])
    | map({system: .[0][0], metric: .[0][1], values: (map(.[2] | tonumber) | sort)})
    | map({system, metric,
           median: (.values | if length % 2 == 1 then .[(length - 1) / 2]
                              else (.[length / 2 - 1] + .[length / 2]) / 2 end),
           min: .values[0], max: .values[-1]})
    | sort_by([(.metric as $m | $met | index($m) // 999), (.system as $s | $sys | index($s) // 999)])
    | {bench: $bench, runs: $runs, results: .}' "$1"
}
