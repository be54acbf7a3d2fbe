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
  local dir=$1 ns=$2 name
  shift 2
  mkdir -p "$dir" || return 1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 \
    -subj "/O=sluice-bench/CN=bench root" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || return 1
  for name in "$@"; do
    bench_leaf_cert "$dir/ca.pem" "$dir/ca.key" "$ns" "$name" "$dir/$name" || return 1
    cat "$dir/$name.crt" "$dir/$name.key" >"$dir/$name.pem"
  done
}

# bench_leaf_cert CA_PEM CA_KEY NAMESPACE NAME OUT [KEY]: OUT.crt, a leaf CA_PEM signs for
# spiffe://cluster.local/ns/NAMESPACE/sa/NAME (server and client use), for a new P-256 key
# (written to OUT.key) or for the existing private key KEY.
bench_leaf_cert() {
  local key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -keyout "$5.key")
  [[ -z ${6-} ]] || key=(-key "$6")
  openssl req -x509 -CA "$1" -CAkey "$2" "${key[@]}" -out "$5.crt" -days 1 -subj "/O=sluice-bench" \
    -addext "subjectAltName=critical,URI:spiffe://cluster.local/ns/$3/sa/$4" \
    -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=serverAuth,clientAuth" \
    -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
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

# bench_wrk_latency URL SECONDS [-- PREFIX...]: "p50 p99" in microseconds of HTTP/1.1 requests
# on one keep-alive connection, one at a time (wrk -t1 -c1; wrk's own latency histogram, read
# by a done() hook). Needs BENCH_TMP (the Lua file is written there).
bench_wrk_latency() {
  local url=$1 seconds=$2 lua=$BENCH_TMP/latency.lua out p50 p99
  shift 2
  if (($#)); then shift; fi
  [[ -f $lua ]] || cat >"$lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("latency-us %d %d %d %d\n", latency:percentile(50),
    latency:percentile(99), summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.errors.status))
end
LUA
  out=$("$@" timeout $((seconds + 30)) wrk -t 1 -c 1 -d "${seconds}s" -s "$lua" "$url" 2>&1) || {
    bench_warn "wrk -c1 to $url failed: $(tail -n 3 <<<"$out")"
    return 1
  }
  read -r p50 p99 < <(awk '$1 == "latency-us" && ($4 + $5) == 0 { print $2, $3 }' <<<"$out")
  [[ -n $p50 && -n $p99 ]] || {
    bench_warn "wrk -c1 to $url: no latency figures, or errors: $(grep -E 'latency-us|error' <<<"$out" | tr -s ' ')"
    return 1
  }
  echo "$p50 $p99"
}

# bench_h2load_rps URL SECONDS CONNS [-- PREFIX...]: HTTP/2 requests/s of one h2load thread over
# CONNS connections (prior knowledge, h2c), one stream at a time on each (-m 1, like HTTP/1.1
# keep-alive); fails if any request failed or was not answered 2xx.
bench_h2load_rps() {
  local url=$1 seconds=$2 conns=$3 out rate
  shift 3
  if (($#)); then shift; fi
  out=$("$@" timeout $((seconds + 30)) h2load -t 1 -c "$conns" -m 1 -D "$seconds" "$url" 2>&1) || {
    bench_warn "h2load to $url failed: $(tail -n 3 <<<"$out")"
    return 1
  }
  if ! grep -qE '^requests: .* 0 failed, 0 errored, 0 timeout' <<<"$out" ||
    ! grep -qE '^status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx' <<<"$out"; then
    bench_warn "h2load to $url: $(grep -E '^(requests|status codes):' <<<"$out" | paste -sd ';')"
    return 1
  fi
  rate=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i == "req/s,") print $(i - 1) }' <<<"$out")
  [[ -n $rate ]] || return 1
  echo "$rate"
}

# bench_paced_http HOST PORT RATE SECONDS CONNS PIDS [PREFIX...]: HTTP/1.1 GET / at a fixed RATE
# per second for SECONDS, open loop (request i is sent at start + i/RATE on the next idle one
# of CONNS keep-alive connections), and the CPU the processes PIDS (comma-separated) used in
# exactly that window, from utime + stime in /proc/PID/stat (the client shares the host's
# /proc when it runs in a pod). Prints "achieved_rps vcpu_sum vcpu_pid1,vcpu_pid2,... late"
# (late: requests that found no idle connection when due and waited for one); fails on any
# error or non-2xx answer, or below 98% of RATE. Needs BENCH_TMP.
bench_paced_http() {
  local host=$1 port=$2 rate=$3 seconds=$4 conns=$5 pids=$6 py=$BENCH_TMP/paced_http.py out
  shift 6
  [[ -f $py ]] || cat >"$py" <<'PY'
import asyncio, os, sys
host, port, rate, seconds, conns = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
pids = [int(p) for p in sys.argv[6].split(",") if p]
tick = os.sysconf("SC_CLK_TCK")
request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: sluice-bench-paced\r\n\r\n".encode()

def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15)

async def exchange(conn):
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status

async def main():
    idle = asyncio.Queue()
    for _ in range(conns):
        idle.put_nowait(await asyncio.open_connection(host, port))
    ok = bad = late = 0
    async def one(conn):
        nonlocal ok, bad
        try:
            status = await asyncio.wait_for(exchange(conn), 5)
        except Exception:
            bad += 1
            return
        ok += 200 <= status < 300
        bad += not 200 <= status < 300
        idle.put_nowait(conn)
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    pending = set()
    before = [cpu(p) for p in pids]
    start = loop.time()
    for i in range(total):
        wait = start + i / rate - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if idle.empty():
            late += 1
        try:
            conn = await asyncio.wait_for(idle.get(), 5)
        except asyncio.TimeoutError:
            break
        task = asyncio.ensure_future(one(conn))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    elapsed = loop.time() - start
    after = [cpu(p) for p in pids]
    shares = [(a - b) / elapsed for a, b in zip(after, before)]
    print(f"paced {ok / elapsed:.1f} {sum(shares):.5f} {','.join(f'{s:.5f}' for s in shares)} {ok} {bad} {late} {total}")

asyncio.run(main())
PY
  out=$("$@" timeout $((seconds + 30)) python3 "$py" "$host" "$port" "$rate" "$seconds" "$conns" "$pids" 2>&1) || {
    bench_warn "paced client to $host:$port failed: $(tail -n 3 <<<"$out")"
    return 1
  }
  awk -v want="$rate" '
    $1 == "paced" { found = 1
      if ($6 > 0 || $5 < $8 || $2 < 0.98 * want) { printf "%d ok, %d failed of %d\n", $5, $6, $8 > "/dev/stderr"; exit 1 }
      print $2, $3, $4, $7 }
    END { if (!found) exit 1 }' <<<"$out" || {
    bench_warn "paced client to $host:$port at $rate/s: $(tail -n 2 <<<"$out")"
    return 1
  }
}

# bench_lab_leftovers RUN_ID: warn about anything of a lab that `sluicectl lab down` removed
# and that is still there: every netns, link, mount and cgroup of a lab carries its run id.
bench_lab_leftovers() {
  local id=$1 found
  found=$({
    ip netns list | grep -F "sluice-$id-" || true
    ip -o link show | grep -F "sluice$id" || true
    grep -F "$id" /proc/mounts || true
    find /sys/fs/cgroup -maxdepth 2 -name "sluice-$id" 2>/dev/null || true
  })
  [[ -z $found ]] || bench_warn "lab $id left behind: $found"
}

# bench_parse_options ARG...: the options every benchmark takes (--build, --runs, --quick,
# --duration, --json, --logs, -h), checked; sets BUILD_DIR, RUNS, QUICK, DURATION (--quick: 1
# run of 2 s tests), JSON_OUT and LOGS_OUT (absolute), and prints the caller's usage() for -h.
# A script with options of its own (each taking a value) defines bench_script_option NAME VALUE,
# which takes one or returns 1.
bench_parse_options() {
  BUILD_DIR=./build RUNS=3 QUICK=0 DURATION=5 JSON_OUT="" LOGS_OUT=""
  while (($#)); do
    case $1 in
      --build) BUILD_DIR=${2:?--build needs a directory}; shift 2 ;;
      --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
      --quick) QUICK=1; shift ;;
      --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
      --json) JSON_OUT=${2:?--json needs a file}; shift 2 ;;
      --logs) LOGS_OUT=${2:?--logs needs a directory}; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *)
        if declare -F bench_script_option >/dev/null && bench_script_option "$1" "${2-}"; then
          [[ -n ${2-} ]] || bench_die "$1 needs a value"
          shift 2
        else
          usage >&2
          bench_die "unknown argument: $1"
        fi
        ;;
    esac
  done
  if ((QUICK)); then RUNS=1 DURATION=2; fi
  local n
  for n in RUNS DURATION; do
    [[ ${!n} =~ ^[0-9]+$ ]] || bench_die "${n,,} must be a non-negative integer, got '${!n}'"
  done
  ((RUNS >= 1 && RUNS <= 20)) || bench_die "--runs must be 1..20"
  ((DURATION >= 1 && DURATION <= 60)) || bench_die "--duration must be 1..60 seconds"
  if [[ -n $JSON_OUT ]]; then JSON_OUT=$(realpath -m -- "$JSON_OUT"); fi
  if [[ -n $LOGS_OUT ]]; then LOGS_OUT=$(realpath -m -- "$LOGS_OUT"); fi
  BUILD_DIR=$(realpath -m -- "$BUILD_DIR")
}

# bench_install_binaries REPO BUILD_DIR PATH...: the binaries under test (PATHs relative to
# BUILD_DIR, e.g. cli/sluicectl), built with ninja -j2 if one is missing (the target is the
# file name), copied into BENCH_TMP/bin/PATH so that a relink of the build tree during the run
# cannot mix versions; warns about Debug and sanitizer builds.
bench_install_binaries() {
  local repo=$1 build=$2 bin missing=() targets=()
  shift 2
  for bin in "$@"; do [[ -x $build/$bin ]] || missing+=("$bin"); done
  if ((${#missing[@]})); then
    bench_log "binaries missing in $build: building them"
    for bin in "$@"; do targets+=("${bin##*/}"); done
    "$repo/scripts/build.sh" "$build" -j2 "${targets[@]}" >&2
    for bin in "$@"; do [[ -x $build/$bin ]] || bench_die "the build did not produce $bin in $build"; done
  fi
  if [[ -f $build/CMakeCache.txt ]] &&
    grep -qE '^(SLUICE_SANITIZE:STRING=.+|CMAKE_BUILD_TYPE:STRING=Debug)$' "$build/CMakeCache.txt"; then
    bench_warn "$build is a Debug or sanitizer build: its figures say little about a release"
  fi
  for bin in "$@"; do install -D -m 0755 -- "$build/$bin" "$BENCH_TMP/bin/$bin"; done
}

# bench_log_tails FILE...: the last lines of each non-empty FILE, on stderr.
bench_log_tails() {
  local file
  for file in "$@"; do
    [[ -s $file ]] || continue
    printf -- '--- last lines of %s:\n' "${file##*/}" >&2
    tail -n 15 "$file" >&2
  done
}

# bench_load_note NCPU LOAD_BEFORE: the table's load-average lines, with a note when the load
# exceeded the CPUs before or now.
bench_load_note() {
  local ncpu=$1 before=$2
  printf 'load average before: %s   after: %s\n' "$before" "$(cut -d' ' -f1-3 /proc/loadavg)"
  if awk -v a="$before" -v b="$(cut -d' ' -f1 /proc/loadavg)" -v n="$ncpu" 'BEGIN { exit !(a + 0 > n || b + 0 > n) }'; then
    printf 'the load average exceeded the %s CPUs: other work competed for them, and the figures\n' "$ncpu"
    printf '(latency p99 above all) include waiting for a CPU; compare with runs made under similar load\n'
  fi
}

# bench_finish SAMPLES NAME RUNS SYSTEMS METRICS JSON_OUT FAILURES PRINT_TABLE: the results
# document from the samples, the caller's table (PRINT_TABLE DOCUMENT), the document copied to
# JSON_OUT if set; exits 1 when FAILURES measurements failed.
bench_finish() {
  local doc=$BENCH_TMP/results.json
  bench_results_json "$1" "$2" "$3" "$4" "$5" >"$doc"
  "$8" "$doc"
  if [[ -n $6 ]]; then
    cp -- "$doc" "$6"
    bench_log "results written to $6"
  fi
  if (($7)); then
    bench_warn "$7 measurement(s) failed; their figures are missing above"
    exit 1
  fi
}

# bench_traps CLEANUP: run the caller's CLEANUP on exit, also after Ctrl-C and SIGTERM.
bench_traps() {
  # shellcheck disable=SC2064 # the function name is fixed now, on purpose
  trap "$1" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# bench_keep_logs DEST PATH...: copy PATHs (a directory's contents, or files) into DEST (--logs).
bench_keep_logs() {
  local dest=$1 path
  shift
  mkdir -p "$dest" || return 1
  for path in "$@"; do
    if [[ -d $path ]]; then cp -r -- "$path"/. "$dest"/; else cp -r -- "$path" "$dest"/; fi
  done
  bench_log "logs kept in $dest"
}

# bench_failed MESSAGE...: count a measurement that failed (BENCH_FAILURES) and warn; the run
# goes on, and bench_finish reports the count.
BENCH_FAILURES=0
bench_failed() {
  BENCH_FAILURES=$((BENCH_FAILURES + 1))
  bench_warn "$*"
}
