#!/usr/bin/env bash
# Capture benchmark in the local lab (sluicectl lab): pod-to-pod traffic across two nodes with no
# mesh, with Sluice (namespace labelled ambient: eBPF capture, ztunnel pair, mTLS HBONE), with
# Sluice and local-hop acceleration, and through an HAProxy mTLS pair on the nodes, in one run.
# See bench/README.md for what each figure means and how it is taken.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

usage() {
  cat <<EOF
usage: bench/capture.sh [--build DIR] [--runs N] [--quick] [--json FILE] [options]

Measures pod to pod across two lab nodes, in one run: no mesh (direct), Sluice (namespace
labelled sluice.dev/dataplane-mode=ambient), Sluice with local-hop acceleration (sluice-accel) and
an HAProxy mTLS pair on the two nodes (haproxy): 64-byte request/response latency p50/p99
(sockperf ping-pong), single-stream throughput (iperf3) and HTTP/1.1 requests/s over 64
keep-alive connections (wrk) against an HAProxy 'http-request return' application.

  --build DIR        build directory with cli/sluicectl, agent/sluice-agent, ztunnel/sluice-ztunnel
                     (default ./build; built if missing; copied before use)
  --runs N           repeat everything N times and report median/min/max (default 3)
  --quick            smoke check: 1 run, 2 s per test
  --duration S       seconds per test (default 5)
  --json FILE        also write the results document to FILE
  --logs DIR         keep every lab's logs, the mesh YAML and the HAProxy configuration in DIR
                     (default: removed)
  -h, --help         this text
EOF
}

NCPU=$(nproc)
ONLINE_CPUS=$(</sys/devices/system/cpu/online)
bench_parse_options "$@"
(($(id -u) == 0)) || bench_die "the lab needs root (network namespaces, cgroups, BPF)"

bench_require iperf3 sockperf haproxy wrk curl jq ss openssl bpftool timeout column

# --- the binaries under test ---------------------------------------------------------------

BUILD_DIR=$(realpath -m -- "$BUILD_DIR")
BINARIES=(cli/sluicectl agent/sluice-agent ztunnel/sluice-ztunnel)
binaries_present() {
  local bin
  for bin in "${BINARIES[@]}"; do [[ -x $BUILD_DIR/$bin ]] || return 1; done
}
if ! binaries_present; then
  bench_log "binaries missing in $BUILD_DIR: building them"
  "$REPO_DIR/scripts/build.sh" "$BUILD_DIR" -j2 sluicectl sluice-agent sluice-ztunnel >&2
  binaries_present || bench_die "the build did not produce ${BINARIES[*]} in $BUILD_DIR"
fi
if [[ -f $BUILD_DIR/CMakeCache.txt ]] &&
  grep -qE '^(SLUICE_SANITIZE:STRING=.+|CMAKE_BUILD_TYPE:STRING=Debug)$' "$BUILD_DIR/CMakeCache.txt"; then
  bench_warn "$BUILD_DIR is a Debug or sanitizer build: its figures say little about a release"
fi

# --- the lab: two nodes, a client pod on node-a, a server pod with the applications on node-b --

NS=bench
CLIENT_POD=$NS/client
SERVER_POD=$NS/server
CLIENT_IP=198.18.1.10
SERVER_IP=198.18.2.10
P_IPERF=5201
P_SOCKPERF=11111
P_HTTP=8080
P_STREAMS=9000 # the HAProxy templates' tunnel.sh frontend: rendered, nothing listens behind it
HBONE_PORT=15008
WRK_CONNS=64
SYSTEMS=(direct sluice sluice-accel haproxy)
METRICS=(rr_p50_us rr_p99_us throughput_gbps http1_c64_rps)
# Logging stays out of the figures: no access log, no admin endpoints, warnings only.
ZTUNNEL_ARGS=(--access-log none --no-admin --log-level warn)

LAB_UP=0
RUN_DIR="" # the lab's run directory (logs, pins), known once it is up
cleanup() {
  # lab down kills every process of the lab (agents, ztunnels, containers, HAProxy pair,
  # clients) and unmounts its BPF filesystem.
  if ((LAB_UP)); then lab_down || bench_warn "lab down failed: run $SLUICECTL lab down ${LAB[*]}"; fi
  if [[ -n $LOGS_OUT && -d $LOGS ]]; then
    mkdir -p "$LOGS_OUT" && cp -r -- "$LOGS"/. "$CONFIG" "$SAMPLES" "$LOGS_OUT"/ &&
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
CERTS=$BENCH_TMP/certs
: >"$SAMPLES"
mkdir -p "$LOGS" "$CONFIG"

# A private copy, so that someone relinking the build tree mid-run cannot mix versions.
for bin in "${BINARIES[@]}"; do install -D -m 0755 -- "$BUILD_DIR/$bin" "$BENCH_TMP/bin/$bin"; done
SLUICECTL=$BENCH_TMP/bin/cli/sluicectl
LAB=(--state-dir "$BENCH_TMP/state" --name "bench-$$")
lab_exec() { "$SLUICECTL" lab exec "${LAB[@]}" "$@"; }
lab_status() { "$SLUICECTL" lab status "${LAB[@]}" --json; }

# The applications are containers of the server pod; the namespace label says whether the
# pods are in the mesh.
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
spec:
  nodeName: node-b
  serviceAccountName: server
  containers:
    - name: iperf3
      command: [iperf3, -s, -B, $SERVER_IP, -p, "$P_IPERF"]
      ports: [{containerPort: $P_IPERF}]
    - name: sockperf
      command: [sockperf, server, --tcp, -i, $SERVER_IP, -p, "$P_SOCKPERF"]
      ports: [{containerPort: $P_SOCKPERF}]
    - name: http-app
      command: [haproxy, -db, -f, $CONFIG/http-app.cfg]
      ports: [{containerPort: $P_HTTP}]
status: {phase: Running, podIP: $SERVER_IP}
EOF
  # Renamed into place so the agents never reload a half-written file.
  mv -f -- "$CONFIG/mesh.yaml.tmp" "$CONFIG/mesh.yaml"
}

show_lab_logs() { bench_log_tails "$RUN_DIR"/*.log "$LOGS"/haproxy-*.log; }

# lab_up off|on: a fresh lab whose agents run with that local-acceleration setting. The
# namespace starts unlabelled with acceleration off (direct and haproxy come first) and
# labelled with it on (only sluice-accel is measured there).
LAB_SEQ=0
lab_up() {
  local accel=$1 args=() arg
  if [[ $accel == on ]]; then write_mesh 'sluice.dev/dataplane-mode: ambient'; else write_mesh ''; fi
  for arg in "${ZTUNNEL_ARGS[@]}"; do args+=(--ztunnel-arg "$arg"); done
  LAB_SEQ=$((LAB_SEQ + 1))
  LAB_LOGS=$LOGS/lab$LAB_SEQ-accel-$accel
  mkdir -p "$LAB_LOGS"
  LAB_UP=1 # set before up: an interrupted up leaves a state file that down cleans up
  "$SLUICECTL" lab up --config "$CONFIG" "${LAB[@]}" --local-acceleration "$accel" \
    --agent "$BENCH_TMP/bin/agent/sluice-agent" --ztunnel "$BENCH_TMP/bin/ztunnel/sluice-ztunnel" \
    "${args[@]}" >"$LAB_LOGS/lab-up.log" 2>&1 || {
    bench_log_tails "$LAB_LOGS/lab-up.log"
    bench_die "sluicectl lab up --local-acceleration $accel failed"
  }
  RUN_DIR=$(lab_status | jq -r .runDir)
  [[ -d $RUN_DIR ]] || bench_die "lab status names no run directory ('$RUN_DIR')"
  NODE_A_IP=$(node_ip node-a)
  NODE_B_IP=$(node_ip node-b)
}

node_ip() { lab_status | jq -er --arg node "$1" '.nodes[] | select(.name == $node) | .ipv4'; }

lab_down() {
  if [[ -n $RUN_DIR && -d $RUN_DIR ]]; then cp -- "$RUN_DIR"/*.log "$LAB_LOGS"/ 2>/dev/null || true; fi
  stop_haproxy_pair
  local prefix
  prefix=$(lab_status 2>/dev/null | jq -r '.runId // empty') || true
  "$SLUICECTL" lab down "${LAB[@]}" >/dev/null || return 1
  LAB_UP=0
  RUN_DIR=""
  [[ -z $prefix ]] || check_removed "$prefix"
}

# Nothing of a lab that is down may remain: netns, links, mounts, cgroups carry its run id.
check_removed() {
  local id=$1 left
  left=$({
    ip netns list | grep -F "sluice-$id-" || true
    ip -o link show | grep -F "sluice$id" || true
    grep -F "$id" /proc/mounts || true
    find /sys/fs/cgroup -maxdepth 2 -name "sluice-$id" 2>/dev/null || true
  })
  [[ -z $left ]] || bench_warn "lab $id left behind: $left"
}

# pod_enrolled POD NODE: the node's agent enrolled the pod and handed it to its ztunnel.
pod_enrolled() { grep -q "pod $1 enrolled" "$RUN_DIR/$2-agent.log"; }
wait_enrolled() {
  if ! bench_wait_until 20 pod_enrolled "$CLIENT_POD" node-a ||
    ! bench_wait_until 20 pod_enrolled "$SERVER_POD" node-b; then
    show_lab_logs
    bench_die "the agents did not enroll $CLIENT_POD and $SERVER_POD within 20 s"
  fi
}
enroll() {
  write_mesh 'sluice.dev/dataplane-mode: ambient'
  wait_enrolled
}

# --- the HAProxy mTLS pair: one per node, like a ztunnel, started in the nodes' netns ----------

HAPROXY_PIDS=()
# The application (a container of the server pod) is rendered once, before the first lab.
render_app() {
  bench_render "$BENCH_DIR/haproxy/http-app.cfg.in" "$CONFIG/http-app.cfg" \
    "SERVER_IP=$SERVER_IP" "P_HTTP=$P_HTTP"
  haproxy -c -q -f "$CONFIG/http-app.cfg" >&2 || bench_die "HAProxy rejected the application configuration"
}
# The pair needs the nodes' addresses, known once a lab is up. One thread each, like a ztunnel
# of the lab (--workers 1).
render_pair() {
  local name
  for name in common client server; do
    bench_render "$BENCH_DIR/haproxy/$name.cfg.in" "$CONFIG/haproxy-$name.cfg" \
      "THREADS=1" "ENTRY_IP=$NODE_A_IP" "TLS_IP=$NODE_B_IP" "SERVER_IP=$SERVER_IP" \
      "CERTS=$CERTS" "P_IPERF=$P_IPERF" "P_SOCKPERF=$P_SOCKPERF" "P_HTTP=$P_HTTP" \
      "P_STREAMS=$P_STREAMS"
  done
  for name in client server; do
    haproxy -c -q -f "$CONFIG/haproxy-common.cfg" -f "$CONFIG/haproxy-$name.cfg" >&2 ||
      bench_die "HAProxy rejected the rendered $name configuration"
  done
}

node_listening() { [[ -n $(lab_exec --node "$1" -- ss -Htln "src = $2:$3") ]]; }

# HAProxy-b (node-b: mTLS in, plaintext to the server pod) and HAProxy-a (node-a: plaintext in
# from the client pod, mTLS to HAProxy-b). Spawned as sluicectl itself, which turns into
# haproxy, so the pid is HAProxy's; lab down would kill them too.
start_haproxy_pair() {
  local side node ip
  for side in server client; do
    if [[ $side == server ]]; then node=node-b ip=$NODE_B_IP; else node=node-a ip=$NODE_A_IP; fi
    bench_spawn "$LAB_LOGS/haproxy-$side.log" "$SLUICECTL" lab exec "${LAB[@]}" --node "$node" -- \
      haproxy -db -f "$CONFIG/haproxy-common.cfg" -f "$CONFIG/haproxy-$side.cfg"
    HAPROXY_PIDS+=("$BENCH_LAST_PID")
    bench_wait_until 15 node_listening "$node" "$ip" "$P_HTTP" || {
      bench_log_tails "$LAB_LOGS/haproxy-$side.log"
      bench_die "HAProxy on $node ($ip) did not start"
    }
  done
}
stop_haproxy_pair() {
  local pid
  for pid in "${HAPROXY_PIDS[@]}"; do bench_stop "$pid"; done
  HAPROXY_PIDS=()
}
haproxy_pair_alive() {
  local pid
  for pid in "${HAPROXY_PIDS[@]}"; do bench_alive "$pid" || return 1; done
}

# What a handshake with HAProxy-b from node-a negotiates (logged once): TLS 1.3 and the suite.
log_haproxy_tls() {
  local out
  out=$(lab_exec --node node-a -- timeout 5 openssl s_client -connect "$NODE_B_IP:$P_HTTP" -brief \
    -cert "$CERTS/client.crt" -key "$CERTS/client.key" -CAfile "$CERTS/ca.pem" </dev/null 2>&1 || true)
  bench_log "HAProxy-a -> HAProxy-b handshake: $(grep -E '^(Protocol version|Ciphersuite|Peer signature type|Server Temp Key|Verification):' <<<"$out" | paste -sd ';')"
}

# --- which path a system takes, and proof that it took it -----------------------------------

# Where the client pod connects: the server pod itself, or HAProxy-a on node-a.
entry_ip() { if [[ $1 == haproxy ]]; then echo "$NODE_A_IP"; else echo "$SERVER_IP"; fi; }

# HBONE connections into the server pod: some while meshed, none otherwise.
hbone_conns() { lab_exec "$SERVER_POD" -- ss -Htn state established "( sport = :$HBONE_PORT )" | wc -l; }
http_from_client() {
  lab_exec "$CLIENT_POD" -- curl -fsS --noproxy '*' -m 2 -o /dev/null "http://$1:$P_HTTP/"
}
meshed_path_up() { http_from_client "$SERVER_IP" && (($(hbone_conns) > 0)); }
meshed() { [[ $1 == sluice || $1 == sluice-accel ]]; }

warm_up() {
  local sys=$1 ip i
  ip=$(entry_ip "$sys")
  if meshed "$sys"; then
    bench_wait_until 20 meshed_path_up || {
      show_lab_logs
      bench_die "$sys: no request through the mesh (HBONE into the server pod) within 20 s"
    }
  else
    bench_wait_until 20 http_from_client "$ip" || {
      show_lab_logs
      bench_die "$sys: the client pod cannot reach $ip:$P_HTTP"
    }
    (($(hbone_conns) == 0)) || bench_die "$sys: HBONE connections into the server pod: it is meshed"
  fi
  for ((i = 0; i < 5; i++)); do http_from_client "$ip" || return 1; done
}

# node-a's sk_msg counters, summed over CPUs: "redirected_messages redirected_bytes
# passed_messages" (indexes of enum sluice_accel_decision in bpf/include/sluice_accel.h);
# "0 0 0" when acceleration is off (nothing pinned).
accel_counters() {
  local pin=$RUN_DIR/bpf/node-a/accel_counters
  [[ -e $pin ]] || { echo "0 0 0"; return 0; }
  bpftool -j map dump pinned "$pin" | jq -er '
    map(.formatted // error("bpftool printed no formatted values (no BTF?)")
        | {(.key | tostring): (.values | map(.value) | add)}) | add
    | "\(.["2"]) \(.["3"]) \(.["4"] + .["5"])"'
}

accel_read() { accel_counters || bench_die "cannot read node-a's accel_counters in $RUN_DIR/bpf"; }
accel_mark() { ACCEL_BEFORE=$(accel_read); }

# check_accel SYS TEST [MIN_BYTES]: for sluice-accel, the test's messages (since accel_mark) were
# redirected on node-a's local hop, at least MIN_BYTES of them; for sluice, none were.
check_accel() {
  local sys=$1 test=$2 min_bytes=${3:-1} after m0 b0 p0 m1 b1 p1
  meshed "$sys" || return 0
  after=$(accel_read)
  read -r m0 b0 p0 <<<"$ACCEL_BEFORE"
  read -r m1 b1 p1 <<<"$after"
  if [[ $sys == sluice ]]; then
    ((m1 == 0)) || bench_die "sluice: $m1 messages redirected with acceleration off"
    return 0
  fi
  bench_log "sluice-accel $test: $((m1 - m0)) messages ($((b1 - b0)) bytes) redirected, $((p1 - p0)) passed"
  if ((m1 - m0 == 0 || b1 - b0 < min_bytes)); then
    bench_die "sluice-accel $test: the local hop was not accelerated ($((b1 - b0)) bytes redirected, at least $min_bytes expected): not reporting it as sluice-accel"
  fi
}

# --- measurements: each prints its figures on stdout, or fails ------------------------------

record() { bench_record "$SAMPLES" "$@"; }

measure_system() {
  local run=$1 sys=$2 ip values a b
  ip=$(entry_ip "$sys")
  warm_up "$sys" || bench_die "$sys: requests from the client pod fail"
  bench_log "run $run/$RUNS: $sys: latency (sockperf), throughput (iperf3), HTTP/1.1 (wrk -c$WRK_CONNS); load $(cut -d' ' -f1 /proc/loadavg)"

  accel_mark
  if values=$(bench_sockperf_rr "$ip" "$P_SOCKPERF" "$DURATION" lab_exec "$CLIENT_POD" --); then
    check_accel "$sys" latency
    read -r a b <<<"$values"
    record "$sys" rr_p50_us "$a"
    record "$sys" rr_p99_us "$b"
  else bench_failed "latency via $sys"; fi

  accel_mark
  if values=$(bench_iperf3 "$ip" "$P_IPERF" "$DURATION" lab_exec "$CLIENT_POD" --); then
    read -r a b <<<"$values"
    # Nearly all of iperf3's bytes go through the local hop, so nearly all must be redirected.
    check_accel "$sys" throughput $((b * 9 / 10))
    record "$sys" throughput_gbps "$a"
  else bench_failed "throughput via $sys"; fi

  accel_mark
  if values=$(bench_wrk_rps "http://$ip:$P_HTTP/" "$DURATION" -c "$WRK_CONNS" -- lab_exec "$CLIENT_POD" --); then
    check_accel "$sys" http
    record "$sys" http1_c64_rps "$values"
  else bench_failed "HTTP/1.1 requests/s via $sys"; fi

  if meshed "$sys" && (($(hbone_conns) == 0)); then
    bench_die "$sys: no HBONE connection into the server pod after the tests: traffic bypassed the mesh"
  fi
  if [[ $sys == haproxy ]] && ! haproxy_pair_alive; then
    bench_log_tails "$LAB_LOGS"/haproxy-*.log
    bench_die "an HAProxy of the pair died during run $run"
  fi
}

# One run: a lab with acceleration off (direct and haproxy unlabelled, then sluice labelled),
# then a fresh one with acceleration on (sluice-accel), so all four see similar machine load.
one_run() {
  local run=$1
  lab_up off
  render_pair
  start_haproxy_pair
  ((run > 1)) || log_haproxy_tls
  measure_system "$run" direct
  measure_system "$run" haproxy
  stop_haproxy_pair
  enroll
  measure_system "$run" sluice
  lab_down || bench_die "lab down failed"
  lab_up on
  wait_enrolled
  measure_system "$run" sluice-accel
  lab_down || bench_die "lab down failed"
}

# --- report --------------------------------------------------------------------------------

# The added p50 of each run against that run's direct (the systems of a run see similar load),
# and in how many runs the target held. Left out if a latency test of some run failed.
added_per_run() {
  awk -F'\t' -v runs="$RUNS" '
    $2 == "rr_p50_us" { p50[$1, ++n[$1]] = $3 }
    END {
      if (n["direct"] != runs || n["sluice"] != runs || n["sluice-accel"] != runs || n["haproxy"] != runs) exit
      split("sluice sluice-accel haproxy", systems, " ")
      for (i = 1; i <= 3; i++) {
        line = line sep systems[i]; sep = ", "
        for (r = 1; r <= runs; r++)
          line = line sprintf("%s%.1f", r == 1 ? " " : "/", p50[systems[i], r] - p50["direct", r])
      }
      for (r = 1; r <= runs; r++) met += p50["sluice", r] < p50["haproxy", r]
      printf "added p50 per run (us): %s; target met in %d of %d runs\n", line, met, runs
    }' "$1"
}

print_table() {
  local json=$1
  printf '\nbench/capture.sh: %s run(s), %s s per test, ztunnel --workers 1, HAProxy nbthread 1, %s CPUs (%s)\n' \
    "$RUNS" "$DURATION" "$NCPU" "$ONLINE_CPUS"
  printf 'load average before: %s   after: %s\n' "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
  if awk -v a="$LOAD_BEFORE" -v b="$(cut -d' ' -f1 /proc/loadavg)" -v n="$NCPU" 'BEGIN { exit !(a + 0 > n || b + 0 > n) }'; then
    printf 'the load average exceeded the %s CPUs: other work competed for them, and the latencies\n' "$NCPU"
    printf '(p99 above all) include waiting for a CPU; compare with runs made under similar load\n'
  fi
  printf 'medians; ratios are to direct; "better" says which way is good\n\n'
  {
    printf 'metric\tdirect\tsluice\tsluice-accel\thaproxy\tsluice/direct\taccel/direct\thaproxy/direct\tbetter\n'
    jq -r --arg metrics "${METRICS[*]}" '
      def fmt: if . == null then "-" elif . >= 100 then (. * 10 | round / 10 | tostring)
               else (. * 1000 | round / 1000 | tostring) end;
      def ratio($a; $b): if $a == null or $b == null or $b == 0 then "-"
                         else ($a / $b * 100 | round / 100 | tostring) + "x" end;
      .results as $r
      | $metrics | split(" ")[] as $m
      | ($r | map(select(.metric == $m)) | map({(.system): .median}) | add // {}) as $by
      | [$m, ($by.direct | fmt), ($by.sluice | fmt), ($by["sluice-accel"] | fmt), ($by.haproxy | fmt),
         ratio($by.sluice; $by.direct), ratio($by["sluice-accel"]; $by.direct),
         ratio($by.haproxy; $by.direct),
         (if ($m | test("gbps|rps")) then "higher" else "lower" end)]
      | @tsv' "$json"
  } | column -t -s $'\t'
  echo
  jq -r '.results | map(select(.metric == "rr_p50_us")) | map({(.system): .median}) | add // {}
    | def added($s): if .[$s] and .direct then (.[$s] - .direct | . * 10 | round / 10) else null end;
      (added("sluice")) as $s | (added("sluice-accel")) as $a | (added("haproxy")) as $h
      | "added p50 over direct: sluice \($s // "-") us, sluice-accel \($a // "-") us, haproxy \($h // "-") us",
        (if $s == null or $h == null then "target (sluice added p50 < haproxy added p50): not measured"
         elif $s < $h then "target (sluice added p50 < haproxy added p50): met (\($s) < \($h) us)"
         else "target (sluice added p50 < haproxy added p50): NOT met (\($s) >= \($h) us)" end)' "$json"
  added_per_run "$SAMPLES"
  cat <<EOF

How each figure is taken (client pod on node-a, server pod on node-b, all on the same $NCPU CPUs):
  direct           namespace not labelled: client pod -> node-a -> bridge -> node-b -> server pod
  sluice           labelled sluice.dev/dataplane-mode=ambient: eBPF capture, ztunnel pair, mTLS HBONE
  sluice-accel     the same in a lab whose agents run --local-acceleration on (sk_msg redirection
                   of the client's hop to its ztunnel, checked on node-a's accel_counters per test)
  haproxy          namespace not labelled; the client connects to HAProxy-a on node-a ($NODE_A_IP),
                   mTLS (TLS 1.3, P-256) to HAProxy-b on node-b, plaintext to the server pod
  rr_p50/p99_us    sockperf ping-pong --tcp -m 64 --full-rtt -t $DURATION (round trip) on one connection
  throughput_gbps  iperf3 -t $DURATION, one TCP stream, received rate
  http1_c64_rps    wrk -t1 -c$WRK_CONNS -d${DURATION}s, HTTP/1.1 keep-alive, against an HAProxy
                   'http-request return' application in the server pod
EOF
}

# --- main ----------------------------------------------------------------------------------

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_log "lab bench-$$, binaries from $BUILD_DIR, $RUNS run(s) of ${DURATION}s tests"
bench_make_certs "$CERTS" "$NS" client server || bench_die "openssl could not make the HAProxy certificates"
render_app
for ((run = 1; run <= RUNS; run++)); do one_run "$run"; done

bench_finish "$SAMPLES" capture "$RUNS" "${SYSTEMS[*]}" "${METRICS[*]}" "$JSON_OUT" "$BENCH_FAILURES" print_table
