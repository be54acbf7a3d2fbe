#!/usr/bin/env bash
# Capture benchmark in the local lab (sluicectl lab): pod-to-pod traffic across two nodes with no
# mesh, then with Sluice (namespace labelled ambient: eBPF capture, ztunnel pair, mTLS HBONE), in
# one run. See bench/README.md for what each figure means and how it is taken.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

usage() {
  cat <<EOF
usage: bench/capture.sh [--build DIR] [--runs N] [--quick] [--json FILE] [options]

Measures pod to pod across two lab nodes, in one run: no mesh (namespace not labelled) and Sluice
(namespace labelled sluice.dev/dataplane-mode=ambient): 64-byte request/response latency p50/p99
(sockperf ping-pong), single-stream throughput (iperf3) and HTTP/1.1 requests/s over 64
keep-alive connections (wrk) against an HAProxy 'http-request return' application.
Sluice with local-hop acceleration (sluice-accel) is not built yet and is not measured.

  --build DIR        build directory with cli/sluicectl, agent/sluice-agent, ztunnel/sluice-ztunnel
                     (default ./build; built if missing)
  --runs N           repeat everything N times and report median/min/max (default 3)
  --quick            smoke check: 1 run, 2 s per test
  --duration S       seconds per test (default 5)
  --json FILE        also write the results document to FILE
  --logs DIR         keep the agents', ztunnels' and applications' logs in DIR (default: removed)
  -h, --help         this text
EOF
}

BUILD_DIR=./build
RUNS=3
QUICK=0
DURATION=5
JSON_OUT=""
LOGS_OUT=""
NCPU=$(nproc)
ONLINE_CPUS=$(</sys/devices/system/cpu/online)

while (($#)); do
  case $1 in
    --build) BUILD_DIR=${2:?--build needs a directory}; shift 2 ;;
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
    --json) JSON_OUT=${2:?--json needs a file}; shift 2 ;;
    --logs) LOGS_OUT=${2:?--logs needs a directory}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; bench_die "unknown argument: $1" ;;
  esac
done
if ((QUICK)); then
  RUNS=1
  DURATION=2
fi
for n in RUNS DURATION; do
  [[ ${!n} =~ ^[0-9]+$ ]] || bench_die "${n,,} must be a non-negative integer, got '${!n}'"
done
((RUNS >= 1 && RUNS <= 20)) || bench_die "--runs must be 1..20"
((DURATION >= 1 && DURATION <= 60)) || bench_die "--duration must be 1..60 seconds"
(($(id -u) == 0)) || bench_die "the lab needs root (network namespaces, cgroups, BPF)"

bench_require iperf3 sockperf haproxy wrk curl jq ss python3 timeout mount umount
if [[ -n $JSON_OUT ]]; then JSON_OUT=$(realpath -m -- "$JSON_OUT"); fi
if [[ -n $LOGS_OUT ]]; then LOGS_OUT=$(realpath -m -- "$LOGS_OUT"); fi

# --- the daemons under test ------------------------------------------------------------------

BUILD_DIR=$(realpath -m -- "$BUILD_DIR")
SLUICECTL=$BUILD_DIR/cli/sluicectl
AGENT=$BUILD_DIR/agent/sluice-agent
ZTUNNEL=$BUILD_DIR/ztunnel/sluice-ztunnel
if [[ ! -x $SLUICECTL || ! -x $AGENT || ! -x $ZTUNNEL ]]; then
  bench_log "binaries missing in $BUILD_DIR: building them"
  (cd "$REPO_DIR" && cmake -S . -B "$BUILD_DIR" -G Ninja &&
    ninja -C "$BUILD_DIR" -j2 sluicectl sluice-agent sluice-ztunnel) >&2
  for bin in "$SLUICECTL" "$AGENT" "$ZTUNNEL"; do
    [[ -x $bin ]] || bench_die "build did not produce $bin"
  done
fi
if [[ -f $BUILD_DIR/CMakeCache.txt ]] &&
  grep -qE '^(SLUICE_SANITIZE:STRING=.+|CMAKE_BUILD_TYPE:STRING=Debug)$' "$BUILD_DIR/CMakeCache.txt"; then
  bench_warn "$BUILD_DIR is a Debug or sanitizer build: its figures say little about a release"
fi

# --- the lab: two nodes, a client pod on node-a, a server pod on node-b -----------------------

NS=bench
CLIENT_POD=$NS/client
SERVER_POD=$NS/server
CLIENT_IP=198.18.1.10
SERVER_IP=198.18.2.10
P_IPERF=5201
P_SOCKPERF=11111
P_HTTP=8080
HBONE_PORT=15008
WRK_CONNS=64
SYSTEMS=(direct sluice)
METRICS=(rr_p50_us rr_p99_us throughput_gbps http1_c64_rps)

LAB_UP=0
BPF_MOUNTED=0
cleanup() {
  # lab down kills every process of the lab (agents, ztunnels, applications, clients).
  if ((LAB_UP)); then "$SLUICECTL" lab down "${LAB[@]}" >/dev/null 2>&1 || bench_warn "lab down failed"; fi
  if ((BPF_MOUNTED)); then umount "$BENCH_TMP/bpf" 2>/dev/null || umount -l "$BENCH_TMP/bpf" || true; fi
  if [[ -n $LOGS_OUT && -d $BENCH_TMP/logs ]]; then
    mkdir -p "$LOGS_OUT" && cp -r -- "$BENCH_TMP"/logs "$BENCH_TMP"/config "$LOGS_OUT"/ &&
      bench_log "logs kept in $LOGS_OUT"
  fi
  bench_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bench_make_tmp capture
SAMPLES=$BENCH_TMP/samples.tsv
LOGS=$BENCH_TMP/logs
CONFIG=$BENCH_TMP/config
: >"$SAMPLES"
mkdir -p "$LOGS" "$CONFIG" "$BENCH_TMP/bpf"
LAB=(--state-dir "$BENCH_TMP/state" --name "bench-$$")

# Daemons are spawned as sluicectl itself (not through a shell function) so that the pid
# bench_spawn records is the process lab exec turns into. Each is disowned: lab down kills them.
LAB_EXEC=("$SLUICECTL" lab exec "${LAB[@]}")
lab_exec() { "${LAB_EXEC[@]}" "$@"; }

# The namespace label is the only thing that differs between direct and sluice.
write_mesh() {
  local labels=$1
  cat >"$CONFIG/mesh.yaml.tmp" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $NS, labels: {$labels}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $NS, uid: 5b1c0a00-0000-4000-8000-000000000001, labels: {app: client}}
spec: {nodeName: node-a, serviceAccountName: client}
status: {phase: Running, podIP: $CLIENT_IP}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: $NS, uid: 5b1c0a00-0000-4000-8000-000000000002, labels: {app: server}}
spec: {nodeName: node-b, serviceAccountName: server}
status: {phase: Running, podIP: $SERVER_IP}
EOF
  # Renamed into place so the agents never reload a half-written file.
  mv -f -- "$CONFIG/mesh.yaml.tmp" "$CONFIG/mesh.yaml"
}

show_log_tail() {
  local file
  for file in "$@"; do
    [[ -s $file ]] || continue
    printf -- '--- last lines of %s:\n' "${file##*/}" >&2
    tail -n 15 "$file" >&2
  done
}

# log_count FILE REGEX: matching lines so far (0 for a missing file).
log_count() { grep -cE "$2" "$1" 2>/dev/null || true; }
log_count_above() { (($(log_count "$1" "$2") > $3)); }

node_cgroup() {
  "$SLUICECTL" lab status "${LAB[@]}" --json |
    jq -r --arg node "$1" '.nodes[] | select(.name == $node) | .cgroup'
}

# Agent and ztunnel per node, as tests/lab/mesh_test.sh and scripts/demo.sh run them.
start_mesh() {
  local state node cgroup
  state=$(echo "$BENCH_TMP"/state/*.json)
  [[ -f $state ]] || bench_die "no lab state file in $BENCH_TMP/state"
  for node in node-a node-b; do
    cgroup=$(node_cgroup "$node")
    [[ -n $cgroup ]] || bench_die "no cgroup for $node in the lab status"
    mkdir -p "$BENCH_TMP/bpf/$node"
    # --node comes after --config-dir: tests/lab/mesh_test.sh restarts its daemons with
    # `pkill -f "sluice-ztunnel --node node-b"`, which would also hit a lab running beside it.
    bench_spawn "$LOGS/$node-agent.log" "${LAB_EXEC[@]}" --node "$node" -- "$AGENT" run \
      --config-dir "$CONFIG" --node "$node" --cgroup "$cgroup" --pin-dir "$BENCH_TMP/bpf/$node" \
      --socket "$BENCH_TMP/$node.sock" --lab-state "$state"
    disown "$BENCH_LAST_PID"
    bench_spawn "$LOGS/$node-ztunnel.log" "${LAB_EXEC[@]}" --node "$node" -- "$ZTUNNEL" \
      --config-dir "$CONFIG" --node "$node" --ca-dir "$BENCH_TMP/ca" \
      --inpod-socket "$BENCH_TMP/$node.sock" --bpf-pin-dir "$BENCH_TMP/bpf/$node" --workers 1 \
      --access-log none --no-admin --log-level warn
    disown "$BENCH_LAST_PID"
  done
  for node in node-a node-b; do
    bench_wait_until 30 log_count_above "$LOGS/$node-agent.log" 'ztunnel connected' 0 || {
      show_log_tail "$LOGS"/*.log
      bench_die "the ztunnel on $node did not connect to its agent within 30 s"
    }
  done
}

pod_listening() { [[ -n $(lab_exec "$SERVER_POD" -- ss -Htln "src = $SERVER_IP:$1") ]]; }

# The applications live in the server pod for the whole invocation.
start_apps() {
  bench_render "$BENCH_DIR/haproxy/http-app.cfg.in" "$BENCH_TMP/http-app.cfg" \
    "SERVER_IP=$SERVER_IP" "P_HTTP=$P_HTTP"
  haproxy -c -q -f "$BENCH_TMP/http-app.cfg" >&2 || bench_die "HAProxy rejected the application configuration"
  bench_spawn "$LOGS/iperf3.log" "${LAB_EXEC[@]}" "$SERVER_POD" -- iperf3 -s -B "$SERVER_IP" -p "$P_IPERF"
  disown "$BENCH_LAST_PID"
  bench_spawn "$LOGS/sockperf.log" "${LAB_EXEC[@]}" "$SERVER_POD" -- sockperf server --tcp -i "$SERVER_IP" \
    -p "$P_SOCKPERF"
  disown "$BENCH_LAST_PID"
  bench_spawn "$LOGS/http-app.log" "${LAB_EXEC[@]}" "$SERVER_POD" -- haproxy -db -f "$BENCH_TMP/http-app.cfg"
  disown "$BENCH_LAST_PID"
  local port
  for port in "$P_IPERF" "$P_SOCKPERF" "$P_HTTP"; do
    bench_wait_until 15 pod_listening "$port" || {
      show_log_tail "$LOGS"/*.log
      bench_die "application on $SERVER_IP:$port did not start"
    }
  done
}

# HBONE connections into the server pod: some while meshed (after a request), none when not.
hbone_conns() {
  lab_exec "$SERVER_POD" -- ss -Htn state established "( sport = :$HBONE_PORT )" | wc -l
}
http_from_client() {
  lab_exec "$CLIENT_POD" -- curl -fsS --noproxy '*' -m 2 -o /dev/null "http://$SERVER_IP:$P_HTTP/"
}
meshed_path_up() { http_from_client && (($(hbone_conns) > 0)); }

# Label (sluice) or unlabel (direct) the namespace and wait until both agents have acted on it.
MESH_STATE=direct # the lab starts with the namespace not labelled
switch_to() {
  local sys=$1 verb before_a before_b
  [[ $sys != "$MESH_STATE" ]] || return 0
  if [[ $sys == sluice ]]; then verb=enrolled; else verb=unenrolled; fi
  before_a=$(log_count "$LOGS/node-a-agent.log" "pod $CLIENT_POD $verb")
  before_b=$(log_count "$LOGS/node-b-agent.log" "pod $SERVER_POD $verb")
  if [[ $sys == sluice ]]; then write_mesh 'sluice.dev/dataplane-mode: ambient'; else write_mesh ''; fi
  if ! bench_wait_until 20 log_count_above "$LOGS/node-a-agent.log" "pod $CLIENT_POD $verb" "$before_a" ||
    ! bench_wait_until 20 log_count_above "$LOGS/node-b-agent.log" "pod $SERVER_POD $verb" "$before_b"; then
    show_log_tail "$LOGS"/*-agent.log "$LOGS"/*-ztunnel.log
    bench_die "the agents did not report the pods $verb within 20 s"
  fi
  MESH_STATE=$sys
}

# The path works end to end and is the one we mean to measure: through HBONE for sluice, and
# with no HBONE connection at all for direct (which also warms the ztunnels' pooled connection).
warm_up() {
  local sys=$1 i
  if [[ $sys == sluice ]]; then
    bench_wait_until 20 meshed_path_up || {
      show_log_tail "$LOGS"/*-ztunnel.log
      bench_die "no request through the mesh (HBONE into the server pod) within 20 s"
    }
  else
    bench_wait_until 20 http_from_client || bench_die "client pod cannot reach the server pod"
    # Pooled HBONE connections from the meshed phase may linger; only new ones would matter.
    local left
    left=$(hbone_conns)
    ((left == 0)) || bench_log "direct: $left idle HBONE connection(s) left from the meshed phase"
  fi
  for ((i = 0; i < 5; i++)); do http_from_client || return 1; done
}

# --- measurements: each prints its figures on stdout, or fails ------------------------------

measure_latency() { bench_sockperf_rr "$SERVER_IP" "$P_SOCKPERF" "$DURATION" lab_exec "$CLIENT_POD" --; }
measure_throughput() {
  local out
  out=$(bench_iperf3 "$SERVER_IP" "$P_IPERF" "$DURATION" lab_exec "$CLIENT_POD" --) || return 1
  cut -f1 <<<"$out"
}
measure_http() {
  bench_wrk_rps "http://$SERVER_IP:$P_HTTP/" "$DURATION" -c "$WRK_CONNS" -- lab_exec "$CLIENT_POD" --
}

# --- one run -------------------------------------------------------------------------------

record() { bench_record "$SAMPLES" "$@"; }
RUN_FAILURES=0
failed() {
  RUN_FAILURES=$((RUN_FAILURES + 1))
  bench_warn "$*"
}

measure_system() {
  local run=$1 sys=$2 values a b
  switch_to "$sys"
  warm_up "$sys" || bench_die "requests from the client pod fail ($sys)"
  bench_log "run $run/$RUNS: $sys: latency (sockperf), throughput (iperf3), HTTP/1.1 (wrk -c$WRK_CONNS)"
  if values=$(measure_latency); then
    read -r a b <<<"$values"
    record "$sys" rr_p50_us "$a"
    record "$sys" rr_p99_us "$b"
  else failed "latency via $sys"; fi
  if values=$(measure_throughput); then
    record "$sys" throughput_gbps "$values"
  else failed "throughput via $sys"; fi
  if values=$(measure_http); then
    record "$sys" http1_c64_rps "$values"
  else failed "HTTP/1.1 requests/s via $sys"; fi
  if [[ $sys == sluice ]] && (($(hbone_conns) == 0)); then
    bench_die "no HBONE connection into the server pod after the sluice tests: traffic bypassed the mesh"
  fi
}

# Each run measures direct, then sluice, so both see similar machine load.
one_run() {
  local run=$1 sys
  for sys in "${SYSTEMS[@]}"; do measure_system "$run" "$sys"; done
}

# --- report --------------------------------------------------------------------------------

print_table() {
  local json=$1
  printf '\nbench/capture.sh: %s run(s), %s s per test, ztunnel --workers 1, %s CPUs (%s)\n' \
    "$RUNS" "$DURATION" "$NCPU" "$ONLINE_CPUS"
  printf 'load average before: %s   after: %s\n' "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'medians; ratios are to direct; "better" says which way is good\n\n'
  {
    printf 'metric\tdirect\tsluice\tsluice/direct\tsluice-accel\tbetter\tsluice min..max\n'
    jq -r --arg metrics "${METRICS[*]}" '
      def fmt: if . == null then "-" elif . >= 100 then (. * 10 | round / 10 | tostring)
               else (. * 1000 | round / 1000 | tostring) end;
      def ratio($a; $b): if $a == null or $b == null or $b == 0 then "-"
                         else ($a / $b * 100 | round / 100 | tostring) + "x" end;
      .results as $r
      | $metrics | split(" ")[] as $m
      | ($r | map(select(.metric == $m)) | map({(.system): .}) | add // {}) as $by
      | [$m, ($by.direct.median | fmt), ($by.sluice.median | fmt),
         ratio($by.sluice.median; $by.direct.median), "not built",
         (if ($m | test("gbps|rps")) then "higher" else "lower" end),
         (if $by.sluice then ($by.sluice.min | fmt) + ".." + ($by.sluice.max | fmt) else "-" end)]
      | @tsv' "$json"
  } | column -t -s $'\t'
  jq -r '.results | map(select(.metric == "rr_p50_us")) | map({(.system): .median}) | add // {}
    | if .direct and .sluice then "\nlatency Sluice adds (p50, sluice - direct): \(.sluice - .direct | . * 10 | round / 10) us"
      else empty end' "$json"
  cat <<EOF

How each figure is taken (client pod on node-a, server pod on node-b, all on the same $NCPU CPUs;
direct = namespace not labelled, sluice = labelled sluice.dev/dataplane-mode=ambient):
  rr_p50/p99_us    sockperf ping-pong --tcp -m 64 --full-rtt -t $DURATION (round trip) on one connection
  throughput_gbps  iperf3 -t $DURATION, one TCP stream, received rate
  http1_c64_rps    wrk -t1 -c$WRK_CONNS -d${DURATION}s, HTTP/1.1 keep-alive, against an HAProxy
                   'http-request return' application in the server pod
  sluice-accel     Sluice with local-hop acceleration does not exist yet: not measured
EOF
}

# --- main ----------------------------------------------------------------------------------

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_log "lab bench-$$, binaries from $BUILD_DIR, $RUNS run(s) of ${DURATION}s tests"
write_mesh ''
LAB_UP=1 # set before up: an interrupted up leaves a state file that down cleans up
"$SLUICECTL" lab up --config "$CONFIG" "${LAB[@]}" >"$LOGS/lab-up.log" 2>&1 || {
  show_log_tail "$LOGS/lab-up.log"
  bench_die "sluicectl lab up failed"
}
mount -t bpf bpf "$BENCH_TMP/bpf" # a private BPF filesystem for this run's pins
BPF_MOUNTED=1
start_mesh
start_apps
for ((run = 1; run <= RUNS; run++)); do one_run "$run"; done

jq_doc=$BENCH_TMP/results.json
bench_results_json "$SAMPLES" capture "$RUNS" "${SYSTEMS[*]}" "${METRICS[*]}" >"$jq_doc"
print_table "$jq_doc"
if [[ -n $JSON_OUT ]]; then
  cp -- "$jq_doc" "$JSON_OUT"
  bench_log "results written to $JSON_OUT"
fi
if ((RUN_FAILURES)); then
  bench_warn "$RUN_FAILURES measurement(s) failed; their figures are missing above"
  exit 1
fi
