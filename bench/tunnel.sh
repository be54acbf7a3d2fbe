#!/usr/bin/env bash
# Tunnel benchmark on loopback: direct TCP vs a Sluice ztunnel pair vs an HAProxy mTLS pair, all
# doing the same job (client -> node A proxy -> mTLS -> node B proxy -> application).
# See bench/README.md for what each figure means and how it is taken.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

usage() {
  cat <<EOF
usage: bench/tunnel.sh [--build DIR] [--runs N] [--quick] [--json FILE] [options]

Measures on loopback, in one run: direct TCP, a Sluice ztunnel pair and an HAProxy 2.6 mTLS pair:
single-stream throughput (iperf3), 64-byte request/response latency p50/p99 (sockperf ping-pong,
unpinned and pinned to one CPU), new-connection rate (wrk, one request per connection), proxy RSS
idle and per open stream, and proxy CPU seconds per GB moved.

  --build DIR        build directory holding ztunnel/sluice-ztunnel (default ./build; built if missing)
  --runs N           repeat everything N times and report median/min/max (default 3)
  --quick            smoke check: 1 run, 2 s per test
  --duration S       seconds per throughput/latency/connection test (default 5)
  --json FILE        also write the results document to FILE
  --workers N        ztunnel --workers and HAProxy nbthread (default: number of CPUs, at most 4)
  --streams N        open streams for the RSS test (default 1000)
  --pin-cpu N        CPU for the pinned latency figures (default 0)
  --conns N          concurrent connections of the connection-rate client (default 8)
  --logs DIR         keep the daemons' logs and configuration in DIR (default: removed)
  -h, --help         this text
EOF
}

ONLINE_CPUS=$(</sys/devices/system/cpu/online)
NCPU=$(nproc)
WORKERS=$((NCPU < 4 ? NCPU : 4))
STREAMS=1000
PIN_CPU=0
CONNS=8
# This script's own options, beside bench_parse_options' common ones.
bench_script_option() {
  case $1 in
    --workers) WORKERS=$2 ;;
    --streams) STREAMS=$2 ;;
    --pin-cpu) PIN_CPU=$2 ;;
    --conns) CONNS=$2 ;;
    *) return 1 ;;
  esac
}
bench_parse_options "$@"
for n in WORKERS STREAMS PIN_CPU CONNS; do
  [[ ${!n} =~ ^[0-9]+$ ]] || bench_die "${n,,} must be a non-negative integer, got '${!n}'"
done
((STREAMS >= 1 && STREAMS <= 5000)) || bench_die "--streams must be 1..5000"
((WORKERS >= 1)) || bench_die "--workers must be at least 1"
((PIN_CPU < NCPU)) || bench_die "--pin-cpu $PIN_CPU: this machine has CPUs $ONLINE_CPUS"

bench_require iperf3 sockperf haproxy wrk openssl python3 taskset curl jq ss
if [[ -n $JSON_OUT ]]; then JSON_OUT=$(realpath -m -- "$JSON_OUT"); fi
if [[ -n $LOGS_OUT ]]; then LOGS_OUT=$(realpath -m -- "$LOGS_OUT"); fi

# --- the daemon under test ------------------------------------------------------------------

BUILD_DIR=$(realpath -m -- "$BUILD_DIR")
ZTUNNEL=$BUILD_DIR/ztunnel/sluice-ztunnel
if [[ ! -x $ZTUNNEL ]]; then
  bench_log "no $ZTUNNEL: building it"
  "$REPO_DIR/scripts/build.sh" "$BUILD_DIR" -j2 sluice-ztunnel >&2
  [[ -x $ZTUNNEL ]] || bench_die "build did not produce $ZTUNNEL"
fi

cleanup() {
  bench_stop_all
  if [[ -n $LOGS_OUT && -d $BENCH_TMP/logs ]]; then
    mkdir -p "$LOGS_OUT" && cp -r -- "$BENCH_TMP"/logs "$BENCH_TMP"/*.cfg "$BENCH_TMP"/mesh "$LOGS_OUT"/ &&
      bench_log "logs kept in $LOGS_OUT"
  fi
  bench_cleanup
}
if [[ -f $BUILD_DIR/CMakeCache.txt ]] &&
  grep -qE '^(SLUICE_SANITIZE:STRING=.+|CMAKE_BUILD_TYPE:STRING=Debug)$' "$BUILD_DIR/CMakeCache.txt"; then
  bench_warn "$BUILD_DIR is a Debug or sanitizer build: its figures say little about a release"
fi

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bench_make_tmp tunnel
SAMPLES=$BENCH_TMP/samples.tsv
: >"$SAMPLES"

# --- addresses: a fresh 127.A.B.0/24 per invocation so parallel runs and other users never clash

pick_prefix() {
  local attempt prefix
  for ((attempt = 0; attempt < 20; attempt++)); do
    prefix=127.$((100 + RANDOM % 100)).$((1 + RANDOM % 254))
    if ! ss -Htan 2>/dev/null | grep -qF " $prefix."; then
      echo "$prefix"
      return 0
    fi
  done
  return 1
}
PREFIX=$(pick_prefix) || bench_die "no unused 127.x.y.0/24 found"
ADMIN_IP=$PREFIX.1  # ztunnel admin, metrics and readiness endpoints
CLIENT_IP=$PREFIX.2 # client pod on node-a; the ztunnel's outbound listeners
SERVER_IP=$PREFIX.3 # server pod on node-b; the applications and node-b's HBONE 15008
HAP_ENTRY_IP=$PREFIX.4 # client-side HAProxy listeners
HAP_TLS_IP=$PREFIX.5   # server-side HAProxy mTLS listeners
P_IPERF=5201
P_SOCKPERF=11111
P_HTTP=8080
P_STREAMS=9000
SYSTEMS=(direct sluice haproxy)
METRICS=(throughput_gbps rr_p50_us rr_p99_us rr_pinned_p50_us rr_pinned_p99_us conn_rate_rps
  rss_idle_mib rss_per_stream_kib cpu_s_per_gb)
CLK_TCK=$(getconf CLK_TCK)
STREAMS_PY=$BENCH_DIR/tools/streams.py

# Where a client connects to reach the application through each system (same ports everywhere).
entry_ip() {
  case $1 in
    direct) echo "$SERVER_IP" ;;
    sluice) echo "$CLIENT_IP" ;;
    haproxy) echo "$HAP_ENTRY_IP" ;;
  esac
}

# Pids of the proxy processes of a system (none for direct).
PROXY_PIDS_sluice=()
PROXY_PIDS_haproxy=()
proxy_pids() {
  case $1 in
    sluice) echo "${PROXY_PIDS_sluice[@]}" ;;
    haproxy) echo "${PROXY_PIDS_haproxy[@]}" ;;
    *) echo "" ;;
  esac
}

# --- static set-up: certificates, mesh configuration, applications -------------------------

write_mesh() {
  mkdir -p "$BENCH_TMP/mesh"
  cat >"$BENCH_TMP/mesh/mesh.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {sluice.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo, labels: {app: client}}
spec: {nodeName: node-a, serviceAccountName: client}
status: {phase: Running, podIP: $CLIENT_IP}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: demo, labels: {app: server}}
spec: {nodeName: node-b, serviceAccountName: server}
status: {phase: Running, podIP: $SERVER_IP}
EOF
}

render_haproxy() {
  local name
  for name in common client server http-app; do
    bench_render "$BENCH_DIR/haproxy/$name.cfg.in" "$BENCH_TMP/haproxy-$name.cfg" \
      "THREADS=$WORKERS" "ENTRY_IP=$HAP_ENTRY_IP" "TLS_IP=$HAP_TLS_IP" "SERVER_IP=$SERVER_IP" \
      "CERTS=$BENCH_TMP/certs" "P_IPERF=$P_IPERF" "P_SOCKPERF=$P_SOCKPERF" "P_HTTP=$P_HTTP" \
      "P_STREAMS=$P_STREAMS"
  done
  local side
  for side in client server; do
    haproxy -c -q -f "$BENCH_TMP/haproxy-common.cfg" -f "$BENCH_TMP/haproxy-$side.cfg" >&2 ||
      bench_die "HAProxy rejected the rendered $side configuration"
  done
  haproxy -c -q -f "$BENCH_TMP/haproxy-http-app.cfg" >&2 ||
    bench_die "HAProxy rejected the rendered application configuration"
}

start_apps() {
  local log=$BENCH_TMP/logs
  bench_spawn "$log/iperf3.log" iperf3 -s -B "$SERVER_IP" -p "$P_IPERF"
  bench_spawn "$log/sockperf.log" sockperf server --tcp -i "$SERVER_IP" -p "$P_SOCKPERF"
  APP_SOCKPERF_PID=$BENCH_LAST_PID
  bench_spawn "$log/http-app.log" haproxy -db -f "$BENCH_TMP/haproxy-http-app.cfg"
  bench_spawn "$log/streams-server.log" python3 "$STREAMS_PY" serve "$SERVER_IP" "$P_STREAMS"
  local port
  for port in "$P_IPERF" "$P_SOCKPERF" "$P_HTTP" "$P_STREAMS"; do
    bench_wait_until 15 bench_is_listening "$SERVER_IP" "$port" || {
      bench_log_tails "$log"/*.log
      bench_die "application on $SERVER_IP:$port did not start"
    }
  done
}

# --- proxies, restarted for every run so each run has its own idle figure -------------------

start_sluice() {
  local log=$BENCH_TMP/logs common=(--config-dir "$BENCH_TMP/mesh" --ca-dir "$BENCH_TMP/ca"
    --access-log none --log-level warn --workers "$WORKERS")
  # node-b first: the first ztunnel creates the CA root the second one reads.
  bench_spawn "$log/ztunnel-node-b.log" "$ZTUNNEL" --node node-b "${common[@]}" \
    --admin "$ADMIN_IP:15000" --metrics "$ADMIN_IP:15020" --readiness "$ADMIN_IP:15021"
  local node_b=$BENCH_LAST_PID
  bench_wait_until 30 bench_http_ok "http://$ADMIN_IP:15021/healthz/ready" || {
    bench_log_tails "$log/ztunnel-node-b.log"
    bench_die "ztunnel node-b not ready within 30 s"
  }
  local outbound=() port
  for port in "$P_IPERF" "$P_SOCKPERF" "$P_HTTP" "$P_STREAMS"; do
    outbound+=(--outbound "demo/client=$CLIENT_IP:$port,$SERVER_IP:$port")
  done
  bench_spawn "$log/ztunnel-node-a.log" "$ZTUNNEL" --node node-a "${common[@]}" \
    --admin "$ADMIN_IP:15100" --metrics "$ADMIN_IP:15120" --readiness "$ADMIN_IP:15121" \
    "${outbound[@]}"
  local node_a=$BENCH_LAST_PID
  bench_wait_until 30 bench_http_ok "http://$ADMIN_IP:15121/healthz/ready" || {
    bench_log_tails "$log/ztunnel-node-a.log"
    bench_die "ztunnel node-a not ready within 30 s"
  }
  PROXY_PIDS_sluice=("$node_a" "$node_b")
}

start_haproxy() {
  local log=$BENCH_TMP/logs
  bench_spawn "$log/haproxy-server.log" haproxy -db -f "$BENCH_TMP/haproxy-common.cfg" \
    -f "$BENCH_TMP/haproxy-server.cfg"
  local server=$BENCH_LAST_PID
  bench_spawn "$log/haproxy-client.log" haproxy -db -f "$BENCH_TMP/haproxy-common.cfg" \
    -f "$BENCH_TMP/haproxy-client.cfg"
  local client=$BENCH_LAST_PID
  if ! bench_wait_until 15 bench_is_listening "$HAP_TLS_IP" "$P_STREAMS" ||
    ! bench_wait_until 15 bench_is_listening "$HAP_ENTRY_IP" "$P_STREAMS"; then
    bench_log_tails "$log"/haproxy-*.log
    bench_die "HAProxy pair did not start"
  fi
  PROXY_PIDS_haproxy=("$client" "$server")
}

stop_proxies() {
  local pid
  for pid in "${PROXY_PIDS_sluice[@]}" "${PROXY_PIDS_haproxy[@]}"; do bench_stop "$pid"; done
  PROXY_PIDS_sluice=()
  PROXY_PIDS_haproxy=()
}

# An end-to-end echo through a system, retried for a while: the proxies are up and routing.
# Repeated so that every ztunnel worker has its pooled HBONE connection (a warm tunnel).
warm_up() {
  local sys=$1 host i
  host=$(entry_ip "$sys")
  bench_wait_until 20 python3 "$STREAMS_PY" probe "$host" "$P_STREAMS" -t 2 || return 1
  python3 "$STREAMS_PY" probe "$host" "$P_STREAMS" $((4 * WORKERS)) -t 5
}

# Logs what a handshake with each system's server side negotiates, so the output shows both
# pairs speak TLS 1.3 with the same kind of suite, key exchange and certificates.
log_tls() {
  local certs=$BENCH_TMP/certs ca=$BENCH_TMP/ca out
  # A throw-away client certificate from the ztunnel's own root, only for this probe.
  bench_leaf_cert "$ca/root-cert.pem" "$ca/root-key.pem" demo client "$certs/probe" \
    "$certs/client.key" || return 0
  out=$(timeout 5 openssl s_client -connect "$SERVER_IP:15008" -alpn h2 -brief -cert "$certs/probe.crt" \
    -key "$certs/client.key" -CAfile "$ca/root-cert.pem" </dev/null 2>&1 || true)
  bench_log "sluice HBONE handshake: $(tls_summary <<<"$out")"
  out=$(timeout 5 openssl s_client -connect "$HAP_TLS_IP:$P_STREAMS" -brief -cert "$certs/client.crt" \
    -key "$certs/client.key" -CAfile "$certs/ca.pem" </dev/null 2>&1 || true)
  bench_log "HAProxy handshake:      $(tls_summary <<<"$out")"
}
tls_summary() {
  awk -F': ' '/^(Protocol version|Ciphersuite|Server Temp Key|Signature type|Verification)/ {
    printf "%s%s", sep, $2; sep = ", " }'
}

# --- measurements: each prints its figures on stdout, or fails ------------------------------

# Prints "throughput_gbps cpu_s_per_gb" (the latter "-" without proxies).
measure_throughput() {
  local sys=$1 pids before after result gbps bytes
  read -r -a pids <<<"$(proxy_pids "$sys")"
  if ((${#pids[@]})); then before=$(bench_sum bench_cpu_ticks "${pids[@]}") || return 1; fi
  result=$(bench_iperf3 "$(entry_ip "$sys")" "$P_IPERF" "$DURATION") || return 1
  read -r gbps bytes <<<"$result"
  if ((${#pids[@]})); then
    after=$(bench_sum bench_cpu_ticks "${pids[@]}") || return 1
    awk -v g="$gbps" -v t=$((after - before)) -v hz="$CLK_TCK" -v b="$bytes" \
      'BEGIN { printf "%.3f %.3f\n", g, (t / hz) / (b / 1e9) }'
  else
    awk -v g="$gbps" 'BEGIN { printf "%.3f -\n", g }'
  fi
}

# Every thread of the given processes onto one CPU, or back onto all online CPUs.
set_affinity() {
  local cpus=$1 pid
  shift
  for pid in "$@"; do taskset -a -p -c "$cpus" "$pid" >/dev/null || return 1; done
}

# "p50 p99" of the full round trip in microseconds, 64-byte messages on one connection.
measure_latency() {
  bench_sockperf_rr "$(entry_ip "$1")" "$P_SOCKPERF" "$DURATION"
}

# Client, sockperf server and all proxy threads on PIN_CPU: the path's cost without any
# cross-CPU wake-ups (and without the other CPU's help).
measure_latency_pinned() {
  local sys=$1 pids result status=0
  read -r -a pids <<<"$(proxy_pids "$sys")"
  pids+=("$APP_SOCKPERF_PID")
  set_affinity "$PIN_CPU" "${pids[@]}" || return 1
  result=$(bench_sockperf_rr "$(entry_ip "$sys")" "$P_SOCKPERF" "$DURATION" taskset -c "$PIN_CPU") ||
    status=1
  set_affinity "$ONLINE_CPUS" "${pids[@]}" || return 1
  ((status == 0)) && echo "$result"
}

# New connections per second: wrk with "Connection: close", so each HTTP request is one TCP
# connection through the system (connect, 1 request, 1 response, close).
measure_conn_rate() {
  bench_wrk_rps "http://$(entry_ip "$1"):$P_HTTP/" "$DURATION" -c "$CONNS" -H 'Connection: close'
}

holder_settled() { grep -q '^ready' "$2" || ! bench_alive "$1"; }
streams_drained() { (($(bench_established_count "$SERVER_IP" "$P_STREAMS") == 0)); }

# Prints "rss_idle_mib rss_per_stream_kib": the proxies' summed VmRSS now, and the growth per
# stream while STREAMS connections are held open end to end through them.
measure_memory() {
  local sys=$1 pids idle held holder out=$BENCH_TMP/logs/hold-$1.log status=0
  read -r -a pids <<<"$(proxy_pids "$sys")"
  local idle_each held_each pid
  idle=$(bench_sum bench_rss_kib "${pids[@]}") || return 1
  idle_each=$(for pid in "${pids[@]}"; do bench_rss_kib "$pid"; done | paste -sd/)
  bench_spawn "$out" python3 "$STREAMS_PY" hold "$(entry_ip "$sys")" "$P_STREAMS" "$STREAMS" -t 120
  holder=$BENCH_LAST_PID
  bench_wait_until 90 holder_settled "$holder" "$out" || true
  if grep -q '^ready' "$out"; then
    held=$(bench_sum bench_rss_kib "${pids[@]}") || status=1
    held_each=$(for pid in "${pids[@]}"; do bench_rss_kib "$pid"; done | paste -sd/)
    bench_log "$sys VmRSS KiB (client side/server side): idle $idle_each, $STREAMS streams $held_each"
  else
    bench_warn "holding $STREAMS streams via $sys failed: $(tail -n 2 "$out")"
    status=1
  fi
  bench_stop "$holder"
  # Let the proxies tear the streams down before the next test uses them.
  bench_wait_until 30 streams_drained ||
    bench_warn "streams via $sys still open 30 s after the holder exited"
  ((status == 0)) || return 1
  awk -v i="$idle" -v h="$held" -v n="$STREAMS" \
    'BEGIN { printf "%.2f %.2f\n", i / 1024, (h - i) / n }'
}

# --- one run -------------------------------------------------------------------------------

record() { bench_record "$SAMPLES" "$@"; }

one_run() {
  local run=$1 sys values a b
  bench_log "run $run/$RUNS: starting proxies"
  start_sluice
  start_haproxy
  for sys in "${SYSTEMS[@]}"; do
    warm_up "$sys" || {
      bench_log_tails "$BENCH_TMP"/logs/*.log
      bench_die "no echo through $sys within 20 s"
    }
  done
  ((run > 1)) || log_tls

  bench_log "run $run: memory (idle, then $STREAMS open streams)"
  for sys in sluice haproxy; do
    if values=$(measure_memory "$sys"); then
      read -r a b <<<"$values"
      record "$sys" rss_idle_mib "$a"
      record "$sys" rss_per_stream_kib "$b"
    else bench_failed "memory via $sys"; fi
  done

  bench_log "run $run: throughput (iperf3, 1 stream, ${DURATION}s)"
  for sys in "${SYSTEMS[@]}"; do
    if values=$(measure_throughput "$sys"); then
      read -r a b <<<"$values"
      record "$sys" throughput_gbps "$a"
      [[ $b == - ]] || record "$sys" cpu_s_per_gb "$b"
    else bench_failed "throughput via $sys"; fi
  done

  bench_log "run $run: request/response latency (sockperf ping-pong, 64 B, unpinned)"
  for sys in "${SYSTEMS[@]}"; do
    if values=$(measure_latency "$sys"); then
      read -r a b <<<"$values"
      record "$sys" rr_p50_us "$a"
      record "$sys" rr_p99_us "$b"
    else bench_failed "latency via $sys"; fi
  done

  bench_log "run $run: request/response latency pinned to CPU $PIN_CPU"
  for sys in "${SYSTEMS[@]}"; do
    if values=$(measure_latency_pinned "$sys"); then
      read -r a b <<<"$values"
      record "$sys" rr_pinned_p50_us "$a"
      record "$sys" rr_pinned_p99_us "$b"
    else bench_failed "pinned latency via $sys"; fi
  done

  bench_log "run $run: connection rate (wrk, $CONNS connections, 1 request each)"
  for sys in "${SYSTEMS[@]}"; do
    if values=$(measure_conn_rate "$sys"); then
      record "$sys" conn_rate_rps "$values"
    else bench_failed "connection rate via $sys"; fi
  done

  for sys in sluice haproxy; do
    local pid
    for pid in $(proxy_pids "$sys"); do
      bench_alive "$pid" || {
        bench_log_tails "$BENCH_TMP"/logs/*.log
        bench_die "a $sys proxy process ($pid) died during run $run"
      }
    done
  done
  stop_proxies
}

# --- report --------------------------------------------------------------------------------

print_table() {
  local json=$1
  printf '\nbench/tunnel.sh: %s run(s), %s s per test, %s proxy worker threads, %s CPUs (%s)\n' \
    "$RUNS" "$DURATION" "$WORKERS" "$NCPU" "$ONLINE_CPUS"
  printf 'load average before: %s   after: %s\n' "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'medians; ratios are sluice/direct and sluice/haproxy; "better" says which way is good\n\n'
  {
    printf 'metric\tdirect\tsluice\thaproxy\tsluice/direct\tsluice/haproxy\tbetter\tsluice min..max\n'
    jq -r --arg metrics "${METRICS[*]}" '
      def fmt: if . == null then "-" elif . >= 100 then (. * 10 | round / 10 | tostring)
               else (. * 1000 | round / 1000 | tostring) end;
      def ratio($a; $b): if $a == null or $b == null or $b == 0 then "-"
                         else ($a / $b * 100 | round / 100 | tostring) + "x" end;
      .results as $r
      | $metrics | split(" ")[] as $m
      | ($r | map(select(.metric == $m)) | map({(.system): .}) | add // {}) as $by
      | [$m, ($by.direct.median | fmt), ($by.sluice.median | fmt), ($by.haproxy.median | fmt),
         ratio($by.sluice.median; $by.direct.median), ratio($by.sluice.median; $by.haproxy.median),
         (if ($m | test("gbps|rps")) then "higher" else "lower" end),
         (if $by.sluice then ($by.sluice.min | fmt) + ".." + ($by.sluice.max | fmt) else "-" end)]
      | @tsv' "$json"
  } | column -t -s $'\t'
  cat <<EOF

How each figure is taken (loopback; client, proxies and server share the same $NCPU CPUs):
  throughput_gbps     iperf3 -t $DURATION, one TCP stream, received rate; unpinned
  rr_p50/p99_us       sockperf ping-pong --tcp -m 64 --full-rtt (round trip) on one warm
                      connection; unpinned: the scheduler places every process on CPUs $ONLINE_CPUS
  rr_pinned_p50/p99   the same, with the sockperf client, the sockperf server and every thread of
                      both proxy processes pinned to CPU $PIN_CPU (taskset -c / taskset -a -p)
  conn_rate_rps       wrk -t1 -c$CONNS -H 'Connection: close': one TCP connection per HTTP request
                      through the system to an HAProxy 'http-request return' app; unpinned
  rss_idle_mib        summed VmRSS of both proxy processes after start-up and warm-up probes
  rss_per_stream_kib  (summed VmRSS with $STREAMS streams held open end to end - idle) / $STREAMS
  cpu_s_per_gb        utime+stime of both proxy processes during the iperf3 test / GB (1e9 B) sent
EOF
}

# --- main ----------------------------------------------------------------------------------

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$BENCH_TMP/logs"
bench_log "addresses $PREFIX.0/24, ztunnel $ZTUNNEL, $RUNS run(s) of ${DURATION}s tests"
bench_make_certs "$BENCH_TMP/certs" demo client server || bench_die "openssl could not make the HAProxy certificates"
write_mesh
render_haproxy
ulimit -n "$(ulimit -Hn)" # thousands of streams need fds in every process
start_apps
for ((run = 1; run <= RUNS; run++)); do one_run "$run"; done

bench_finish "$SAMPLES" tunnel "$RUNS" "${SYSTEMS[*]}" "${METRICS[*]}" "$JSON_OUT" "$BENCH_FAILURES" print_table
