#!/usr/bin/env bash
# Waypoint benchmark in the local lab (sluicectl lab): HTTP from a client pod to an application
# pod directly, through the Sluice waypoint (sluice-waypoint's plain listener, HBONE to the
# application pod's ztunnel; and plain HTTP to the pod while it is outside the mesh,
# sluice-plain), through HAProxy 2.6 as an L7 proxy with the same routes and
# retries, and along the mesh's full path (client pod, ztunnel, waypoint, ztunnel, application
# pod), in one run. See bench/README.md for what each figure means and how it is taken.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

usage() {
  cat <<EOF
usage: bench/waypoint.sh [--build DIR] [--runs N] [--quick] [--json FILE] [options]

Measures HTTP between two lab pods, in one run: direct, through the Sluice waypoint (sluice),
through HAProxy 2.6 as an L7 proxy with the same routes and retries (haproxy), and along the
full mesh path client pod -> ztunnel -> waypoint -> ztunnel -> server pod (sluice-full-path):
HTTP/1.1 and HTTP/2 requests/s over 64 keep-alive connections, HTTP/1.1 p50/p99 latency on one
connection, the proxy's CPU at a fixed 1,000 requests/s and its RSS after the load.

  --build DIR        build directory with cli/sluicectl, agent/sluice-agent,
                     ztunnel/sluice-ztunnel, waypoint/sluice-waypoint (default ./build; built
                     if missing; copied before use)
  --runs N           repeat everything N times and report median/min/max (default 3)
  --quick            smoke check: 1 run, 2 s per test
  --duration S       seconds per test (default 5; the 1,000 requests/s test takes 2 S)
  --json FILE        also write the results document to FILE
  --logs DIR         keep every lab's logs, the mesh YAML, the HAProxy configuration and the
                     samples in DIR (default: removed)
  --systems LIST     measure only these (comma-separated; default all): direct, haproxy,
                     haproxy-mtls, haproxy-tcp, sluice-plain, sluice, sluice-full-path. For
                     A/B runs of one system, e.g. --systems direct,sluice-plain per build
  -h, --help         this text
EOF
}

NCPU=$(nproc)
ONLINE_CPUS=$(</sys/devices/system/cpu/online)
ONLY=""
bench_script_option() { [[ $1 == --systems ]] && ONLY=$2; }
bench_parse_options "$@"
(($(id -u) == 0)) || bench_die "the lab needs root (network namespaces, cgroups, BPF)"

bench_require haproxy wrk h2load curl jq ss python3 timeout column

# --- the lab -------------------------------------------------------------------------------
# node-a: the client pod and the proxy pod "waypoint" (where sluice-waypoint and the HAProxy
# baseline run, one at a time); node-b: the server pod with the HTTP application. The proxy pod
# is never enrolled (sluice.dev/dataplane-mode=none, as Istio's waypoints carry
# istio.io/dataplane-mode=none) and carries the Gateway label ztunnel finds waypoint instances by.

NS=bench
CLIENT_POD=$NS/client
PROXY_POD=$NS/waypoint
SERVER_POD=$NS/server
CLIENT_IP=198.18.1.10
PROXY_IP=198.18.1.20
SERVER_IP=198.18.2.10
SERVICE_VIP=198.19.0.10
SERVICE_PORT=80
P_HTTP=8080     # the application; also the waypoint's plain listener in the proxy pod
P_HAPROXY=8081  # the HAProxy L7 baseline in the proxy pod
P_HAPROXY_TCP=8082  # the HAProxy L4 floor in the proxy pod
P_ADMIN=15000   # the waypoint's admin (config_dump), on the proxy pod's loopback
HBONE_PORT=15008
CONNS=64
PACED_RATE=1000
PACED_CONNS=32
PACED_SECONDS=$((2 * DURATION))
SYSTEMS=(direct sluice haproxy haproxy-mtls sluice-plain haproxy-tcp sluice-full-path sluice-full-path-passthrough)
if [[ -n $ONLY ]]; then
  IFS=, read -ra only <<<"$ONLY"
  for sys in "${only[@]}"; do
    [[ " ${SYSTEMS[*]} " == *" $sys "* && $sys != *-passthrough ]] || bench_die "--systems: unknown system '$sys'"
  done
fi
# wanted SYS: SYS is measured in this invocation (--systems).
wanted() { [[ -z $ONLY || ,$ONLY, == *,$1,* ]]; }
METRICS=(http1_c64_rps http2_c64_rps http1_c1_p50_us http1_c1_p99_us at_1k_rps_vcpu rss_mib)
ZTUNNEL_ARGS=(--access-log none --no-admin --log-level warn)

LAB_UP=0
RUN_DIR=""
cleanup() {
  if ((LAB_UP)); then lab_down || bench_warn "lab down failed: run $SLUICECTL lab down ${LAB[*]}"; fi
  if [[ -n $LOGS_OUT && -d $LOGS ]]; then bench_keep_logs "$LOGS_OUT" "$LOGS" "$CONFIG" "$SAMPLES"; fi
  bench_cleanup
}
bench_traps cleanup
bench_make_tmp waypoint
SAMPLES=$BENCH_TMP/samples.tsv
LOGS=$BENCH_TMP/logs
CONFIG=$BENCH_TMP/config
CERTS=$BENCH_TMP/certs
: >"$SAMPLES"
mkdir -p "$LOGS" "$CONFIG"

bench_install_binaries "$REPO_DIR" "$BUILD_DIR" cli/sluicectl agent/sluice-agent ztunnel/sluice-ztunnel \
  waypoint/sluice-waypoint
SLUICECTL=$BENCH_TMP/bin/cli/sluicectl
WAYPOINT=$BENCH_TMP/bin/waypoint/sluice-waypoint
LAB=(--state-dir "$BENCH_TMP/state" --name "wp-$$")
CA_DIR=$BENCH_TMP/state/lab-wp-$$.d/ca # the lab's CA, which the ztunnels use too
lab_exec() { "$SLUICECTL" lab exec "${LAB[@]}" "$@"; }
lab_status() { "$SLUICECTL" lab status "${LAB[@]}" --json; }

# write_mesh PHASE: plain (namespace not labelled: nothing enrolled), server (namespace ambient,
# the client pod opted out: only the server pod is enrolled), full (the client pod too).
write_mesh() {
  local ns_labels="" client_labels="app: client"
  case $1 in
    plain) ;;
    server) ns_labels='sluice.dev/dataplane-mode: ambient'
      client_labels='app: client, sluice.dev/dataplane-mode: none' ;;
    full) ns_labels='sluice.dev/dataplane-mode: ambient' ;;
  esac
  cat >"$CONFIG/mesh.yaml.tmp" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $NS, labels: {$ns_labels}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $NS, uid: 5b1c0b00-0000-4000-8000-000000000001, labels: {$client_labels}}
spec: {nodeName: node-a, serviceAccountName: client}
status: {phase: Running, podIP: $CLIENT_IP}
---
apiVersion: v1
kind: Pod
metadata:
  name: waypoint
  namespace: $NS
  uid: 5b1c0b00-0000-4000-8000-000000000003
  labels: {sluice.dev/dataplane-mode: none, gateway.networking.k8s.io/gateway-name: waypoint}
spec: {nodeName: node-a, serviceAccountName: waypoint}
status: {phase: Running, podIP: $PROXY_IP}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: $NS, uid: 5b1c0b00-0000-4000-8000-000000000002, labels: {app: server}}
spec:
  nodeName: node-b
  serviceAccountName: server
  containers:
    - name: http-app
      command: [haproxy, -db, -f, $CONFIG/http-app.cfg]
      ports: [{containerPort: $P_HTTP}]
status: {phase: Running, podIP: $SERVER_IP}
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: $NS, labels: {sluice.dev/use-waypoint: waypoint}}
spec:
  clusterIP: $SERVICE_VIP
  selector: {app: server}
  ports: [{name: http, port: $SERVICE_PORT, targetPort: $P_HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: $NS}
spec:
  gatewayClassName: sluice-waypoint
  listeners:
    - {name: mesh, port: $HBONE_PORT, protocol: HBONE}
---
# The routes and retries HAProxy's baseline mirrors (haproxy/l7-proxy.cfg.in).
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: server, namespace: $NS}
spec:
  hosts: [server.$NS.svc.cluster.local]
  http:
    - name: never
      match: [{uri: {prefix: /never/}}]
      route: [{destination: {host: server.$NS.svc.cluster.local, port: {number: $SERVICE_PORT}}}]
    - name: default
      route: [{destination: {host: server.$NS.svc.cluster.local, port: {number: $SERVICE_PORT}}}]
      timeout: 10s
      retries: {attempts: 2, perTryTimeout: 5s, retryOn: "connect-failure,refused-stream,503"}
EOF
  mv -f -- "$CONFIG/mesh.yaml.tmp" "$CONFIG/mesh.yaml"
}

show_lab_logs() { bench_log_tails "$RUN_DIR"/*.log "$LAB_LOGS"/*.log; }

LAB_SEQ=0
lab_up() {
  local args=() arg
  write_mesh plain
  for arg in "${ZTUNNEL_ARGS[@]}"; do args+=(--ztunnel-arg "$arg"); done
  LAB_SEQ=$((LAB_SEQ + 1))
  LAB_LOGS=$LOGS/lab$LAB_SEQ
  mkdir -p "$LAB_LOGS"
  LAB_UP=1 # before up: an interrupted up leaves a state file that down cleans up
  "$SLUICECTL" lab up --config "$CONFIG" "${LAB[@]}" \
    --agent "$BENCH_TMP/bin/agent/sluice-agent" --ztunnel "$BENCH_TMP/bin/ztunnel/sluice-ztunnel" \
    "${args[@]}" >"$LAB_LOGS/lab-up.log" 2>&1 || {
    bench_log_tails "$LAB_LOGS/lab-up.log"
    bench_die "sluicectl lab up failed"
  }
  RUN_DIR=$(lab_status | jq -r .runDir)
  [[ -d $RUN_DIR ]] || bench_die "lab status names no run directory ('$RUN_DIR')"
  ZTUNNEL_A=$(ztunnel_pid node-a)
  ZTUNNEL_B=$(ztunnel_pid node-b)
  NODE_B_IP=$(lab_status | jq -er '.nodes[] | select(.name == "node-b") | .ipv4')
  render_mtls
}

ztunnel_pid() {
  lab_status | jq -er --arg node "$1" '.processes[] | select(.owner == $node and .role == "ztunnel") | .pid'
}

lab_down() {
  if [[ -n $RUN_DIR && -d $RUN_DIR ]]; then cp -- "$RUN_DIR"/*.log "$LAB_LOGS"/ 2>/dev/null || true; fi
  stop_proxy
  local id
  id=$(lab_status 2>/dev/null | jq -r '.runId // empty') || true
  "$SLUICECTL" lab down "${LAB[@]}" >/dev/null || return 1
  LAB_UP=0
  RUN_DIR=""
  [[ -z $id ]] || bench_lab_leftovers "$id"
}

pod_enrolled() { grep -q "pod $1 enrolled" "$RUN_DIR/$2-agent.log"; }
# mesh_phase PHASE POD NODE: rewrite the YAML and wait until NODE's agent has enrolled POD.
mesh_phase() {
  write_mesh "$1"
  bench_wait_until 20 pod_enrolled "$2" "$3" || {
    show_lab_logs
    bench_die "phase $1: the agent of $3 did not enroll $2 within 20 s"
  }
}

# --- the proxies in the proxy pod: one at a time, started with lab exec (which turns into the
# proxy, so the pid is the proxy's own; lab down would kill them too) ----------------------------

PROXY_PID=""
HAPROXY_B_PID=""
stop_proxy() {
  local pid
  for pid in "$PROXY_PID" "$HAPROXY_B_PID"; do [[ -z $pid ]] || bench_stop "$pid"; done
  PROXY_PID=""
  HAPROXY_B_PID=""
}
pod_listening() { [[ -n $(lab_exec "$1" -- ss -Htln "src = $2:$3") ]]; }
start_in_proxy_pod() {
  local name=$1 port=$2
  shift 2
  bench_spawn "$LAB_LOGS/$name.log" "$SLUICECTL" lab exec "${LAB[@]}" "$PROXY_POD" -- "$@"
  PROXY_PID=$BENCH_LAST_PID
  bench_wait_until 15 pod_listening "$PROXY_POD" "$PROXY_IP" "$port" || {
    bench_log_tails "$LAB_LOGS/$name.log"
    bench_die "$name did not start listening on $PROXY_IP:$port"
  }
}

# The application and the plain L7 proxy are rendered once; the mTLS variant needs node-b's
# address, known once a lab is up.
render_configs() {
  bench_render "$BENCH_DIR/haproxy/http-app.cfg.in" "$CONFIG/http-app.cfg" \
    "SERVER_IP=$SERVER_IP" "P_HTTP=$P_HTTP"
  bench_render "$BENCH_DIR/haproxy/l7-proxy.cfg.in" "$CONFIG/haproxy-l7.cfg" \
    "PROXY_IP=$PROXY_IP" "P_HAPROXY=$P_HAPROXY" "UPSTREAM=$SERVER_IP:$P_HTTP"
  bench_render "$BENCH_DIR/haproxy/l4-proxy.cfg.in" "$CONFIG/haproxy-l4.cfg" \
    "PROXY_IP=$PROXY_IP" "P_HAPROXY_TCP=$P_HAPROXY_TCP" "UPSTREAM=$SERVER_IP:$P_HTTP"
  local cfg
  for cfg in http-app haproxy-l7 haproxy-l4; do
    haproxy -c -q -f "$CONFIG/$cfg.cfg" >&2 || bench_die "HAProxy rejected $cfg.cfg"
  done
}
# haproxy-mtls: the L7 proxy's upstream is the server side of capture.sh's mTLS pair on node-b
# (common.cfg.in + server.cfg.in, one thread; only its http frontend is used).
render_mtls() {
  bench_render "$BENCH_DIR/haproxy/l7-proxy.cfg.in" "$CONFIG/haproxy-l7-mtls.cfg" \
    "PROXY_IP=$PROXY_IP" "P_HAPROXY=$P_HAPROXY" \
    "UPSTREAM=$NODE_B_IP:$P_HTTP ssl crt $CERTS/client.pem ca-file $CERTS/ca.pem verify required"
  local name
  for name in common server; do
    bench_render "$BENCH_DIR/haproxy/$name.cfg.in" "$CONFIG/haproxy-$name.cfg" \
      "THREADS=1" "TLS_IP=$NODE_B_IP" "SERVER_IP=$SERVER_IP" "CERTS=$CERTS" "P_IPERF=5201" \
      "P_SOCKPERF=11111" "P_HTTP=$P_HTTP" "P_STREAMS=9000"
  done
  haproxy -c -q -f "$CONFIG/haproxy-l7-mtls.cfg" >&2 || bench_die "HAProxy rejected haproxy-l7-mtls.cfg"
  haproxy -c -q -f "$CONFIG/haproxy-common.cfg" -f "$CONFIG/haproxy-server.cfg" >&2 ||
    bench_die "HAProxy rejected the server side of the mTLS pair"
}

node_listening() { [[ -n $(lab_exec --node "$1" -- ss -Htln "src = $2:$3") ]]; }
start_haproxy() { start_in_proxy_pod haproxy-l7 "$P_HAPROXY" haproxy -db -f "$CONFIG/haproxy-l7.cfg"; }
start_haproxy_tcp() { start_in_proxy_pod haproxy-l4 "$P_HAPROXY_TCP" haproxy -db -f "$CONFIG/haproxy-l4.cfg"; }
start_haproxy_mtls() {
  bench_spawn "$LAB_LOGS/haproxy-server.log" "$SLUICECTL" lab exec "${LAB[@]}" --node node-b -- \
    haproxy -db -f "$CONFIG/haproxy-common.cfg" -f "$CONFIG/haproxy-server.cfg"
  HAPROXY_B_PID=$BENCH_LAST_PID
  bench_wait_until 15 node_listening node-b "$NODE_B_IP" "$P_HTTP" || {
    bench_log_tails "$LAB_LOGS/haproxy-server.log"
    bench_die "the server-side HAProxy on node-b ($NODE_B_IP) did not start"
  }
  start_in_proxy_pod haproxy-l7-mtls "$P_HAPROXY" haproxy -db -f "$CONFIG/haproxy-l7-mtls.cfg"
}

# The waypoint of namespace bench: HBONE on the pod's 15008 (where ztunnels send a bound
# service's traffic), and a plain listener on 8080 whose requests are routed as if sent to the
# service VIP; no access log, metrics or readiness listener; warnings only. Its admin port stays
# on the pod's loopback for one config_dump check.
start_waypoint() {
  start_in_proxy_pod sluice-waypoint "$P_HTTP" "$WAYPOINT" --name waypoint --namespace "$NS" \
    --config-dir "$CONFIG" --ca-dir "$CA_DIR" --hbone "$PROXY_IP:$HBONE_PORT" \
    --plain "$PROXY_IP:$P_HTTP=$SERVICE_VIP:$SERVICE_PORT" --access-log none \
    --admin "127.0.0.1:$P_ADMIN" --metrics none --readiness none --log-level warn
  # The service is routed by the benchmark's VirtualService, and nothing failed to compile.
  local dump
  dump=$(lab_exec "$PROXY_POD" -- curl -fsS -m 2 "http://127.0.0.1:$P_ADMIN/config_dump") ||
    bench_die "the waypoint's config_dump is not reachable"
  jq -e --arg vip "$SERVICE_VIP:$SERVICE_PORT" --arg vs "VirtualService $NS/server" '
    (.problems | length) == 0 and
    any(.services[]; .vip == $vip and .routes_from == $vs and .routes == ["never", "default"])' \
    <<<"$dump" >/dev/null || bench_die "the waypoint does not route $SERVICE_VIP:$SERVICE_PORT by the VirtualService: $dump"
}

# --- which path a system takes, and proof that it took it -----------------------------------

# Established connections in POD's netns with local or remote port PORT.
conns_in() { lab_exec "$1" -- ss -Htn state established "( $2 = :$3 )" | wc -l; }
# Established connections from POD to ADDR:PORT.
conns_to() { lab_exec "$1" -- ss -Htn state established "dst = $2:$3" | wc -l; }
# Where a connection from the client pod to HOST:PORT really goes: "host:port" of its peer
# (127.0.0.1:15001 when the client pod's ztunnel captures it).
client_peer() {
  lab_exec "$CLIENT_POD" -- timeout 5 python3 -c \
    'import socket, sys; s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 3); print("%s:%d" % s.getpeername())' "$1" "$2"
}
http_from_client() { lab_exec "$CLIENT_POD" -- curl -fsS --noproxy '*' -m 2 -o /dev/null "http://$1/"; }

# target SYS: the HOST:PORT the client pod sends to.
target() {
  case $1 in
    direct) echo "$SERVER_IP:$P_HTTP" ;;
    haproxy | haproxy-mtls) echo "$PROXY_IP:$P_HAPROXY" ;;
    haproxy-tcp) echo "$PROXY_IP:$P_HAPROXY_TCP" ;;
    sluice | sluice-plain | sluice-full-path-passthrough) echo "$PROXY_IP:$P_HTTP" ;;
    sluice-full-path) echo "$SERVICE_VIP:$SERVICE_PORT" ;;
  esac
}

# check_path SYS: the traffic of SYS took its path (before and after its tests).
check_path() {
  local sys=$1 addr peer
  addr=$(target "$sys")
  peer=$(client_peer "${addr%:*}" "${addr#*:}") || bench_die "$sys: the client pod cannot connect to $addr"
  case $sys in
    direct | haproxy | haproxy-mtls | haproxy-tcp | sluice | sluice-plain)
      [[ $peer == "$addr" ]] || bench_die "$sys: the client pod's connection to $addr went to $peer (captured)"
      ;;
    sluice-full-path | sluice-full-path-passthrough)
      [[ $peer == 127.0.0.1:15001 ]] || bench_die "$sys: the client pod's connection to $addr was not captured (peer $peer)"
      ;;
  esac
  case $sys in
    direct | haproxy | haproxy-mtls | haproxy-tcp | sluice-plain)
      (($(conns_in "$SERVER_POD" sport "$HBONE_PORT") == 0)) || bench_die "$sys: HBONE into the server pod: it is meshed"
      ;;&
    haproxy | sluice-plain) # (haproxy-tcp closes its connection with the client's)
      (($(conns_to "$PROXY_POD" "$SERVER_IP" "$P_HTTP") > 0)) || bench_die "$sys: the proxy holds no connection to the application"
      ;;
    haproxy-mtls)
      (($(conns_to "$PROXY_POD" "$NODE_B_IP" "$P_HTTP") > 0)) || bench_die "$sys: HAProxy holds no connection to the server side on node-b"
      (($(conns_to "$PROXY_POD" "$SERVER_IP" "$P_HTTP") == 0)) || bench_die "$sys: HAProxy bypasses the server side on node-b"
      ;;
    sluice | sluice-full-path-passthrough)
      (($(conns_in "$PROXY_POD" dport "$HBONE_PORT") > 0)) || bench_die "$sys: no HBONE connection from the waypoint to the server pod"
      ;;
    sluice-full-path)
      (($(conns_in "$PROXY_POD" sport "$HBONE_PORT") > 0)) || bench_die "$sys: no HBONE connection from ztunnel into the waypoint"
      (($(conns_in "$PROXY_POD" dport "$HBONE_PORT") > 0)) || bench_die "$sys: no HBONE connection from the waypoint to the server pod"
      ;;
  esac
}

# Does the client pod's ztunnel send the service's traffic to the waypoint (Service label
# sluice.dev/use-waypoint)? Judged by an HBONE connection into the proxy pod after requests to
# the VIP; a ztunnel without waypoint redirection sends them to the server pod instead.
ztunnel_redirects() {
  local i
  for ((i = 0; i < 3; i++)); do http_from_client "$SERVICE_VIP:$SERVICE_PORT" || return 1; done
  (($(conns_in "$PROXY_POD" sport "$HBONE_PORT") > 0))
}

# --- measurements ----------------------------------------------------------------------------

record() { bench_record "$SAMPLES" "$@"; }

# The processes whose CPU and memory a system's figures are: the proxy (sluice: the waypoint,
# the destination ztunnel logged beside it; haproxy-mtls: the L7 proxy, the server side logged
# beside it), or the three of the full path, summed.
proxy_pids() {
  case $1 in
    haproxy | haproxy-tcp | sluice-plain) echo "$PROXY_PID" ;;
    haproxy-mtls) echo "$PROXY_PID,$HAPROXY_B_PID" ;;
    sluice) echo "$PROXY_PID,$ZTUNNEL_B" ;;
    sluice-full-path | sluice-full-path-passthrough) echo "$PROXY_PID,$ZTUNNEL_A,$ZTUNNEL_B" ;;
  esac
}

# idle_vcpu PIDS: CPU seconds per second of each of PIDS (comma-separated) over 2 s without
# requests, for the log (what the paced figure would be at 0 requests/s).
idle_vcpu() {
  local list=() before=() after=() i out=()
  IFS=, read -ra list <<<"$1"
  for i in "${!list[@]}"; do before[i]=$(bench_cpu_ticks "${list[i]}"); done
  sleep 2
  for i in "${!list[@]}"; do
    after[i]=$(bench_cpu_ticks "${list[i]}")
    out+=("$(awk -v t="$((after[i] - before[i]))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.4f", t / hz / 2 }')")
  done
  (IFS=,; echo "${out[*]}")
}

measure_system() {
  local run=$1 sys=$2 addr url pids values a b c d list idle
  addr=$(target "$sys")
  url=http://$addr/
  bench_wait_until 20 http_from_client "$addr" || {
    show_lab_logs
    bench_die "$sys: the client pod gets no answer from $addr"
  }
  check_path "$sys"
  # Warm-up: connection pools, HBONE connections, caches; not measured.
  bench_wrk_rps "$url" 1 -c "$CONNS" -- lab_exec "$CLIENT_POD" -- >/dev/null ||
    bench_die "$sys: the warm-up requests failed"
  bench_log "run $run/$RUNS: $sys via $addr: HTTP/1.1 c$CONNS, HTTP/2 c$CONNS, c1 latency, $PACED_RATE/s; load $(cut -d' ' -f1 /proc/loadavg)"

  if values=$(bench_wrk_rps "$url" "$DURATION" -c "$CONNS" -- lab_exec "$CLIENT_POD" --); then
    record "$sys" http1_c64_rps "$values"
  else bench_failed "HTTP/1.1 requests/s via $sys"; fi

  if values=$(bench_h2load_rps "$url" "$DURATION" "$CONNS" -- lab_exec "$CLIENT_POD" --); then
    record "$sys" http2_c64_rps "$values"
  else bench_failed "HTTP/2 requests/s via $sys"; fi

  if values=$(bench_wrk_latency "$url" "$DURATION" -- lab_exec "$CLIENT_POD" --); then
    read -r a b <<<"$values"
    record "$sys" http1_c1_p50_us "$a"
    record "$sys" http1_c1_p99_us "$b"
  else bench_failed "latency via $sys"; fi

  pids=$(proxy_pids "$sys")
  if [[ -n $pids ]]; then
    idle=$(idle_vcpu "$pids")
    if values=$(bench_paced_http "${addr%:*}" "${addr#*:}" "$PACED_RATE" "$PACED_SECONDS" \
      "$PACED_CONNS" "$pids" lab_exec "$CLIENT_POD" --); then
      read -r a b c d <<<"$values"
      bench_log "$sys at $a requests/s ($d late): vCPU of pids $pids: $c; idle before: $idle"
      if [[ $sys == sluice || $sys == haproxy-mtls ]]; then
        record "$sys" at_1k_rps_vcpu "${c%%,*}"
      else record "$sys" at_1k_rps_vcpu "$b"; fi
    else bench_failed "CPU at $PACED_RATE requests/s via $sys"; fi
    [[ $sys != sluice && $sys != haproxy-mtls ]] || pids=$PROXY_PID
    IFS=, read -ra list <<<"$pids"
    a=$(bench_sum bench_rss_kib "${list[@]}") || bench_die "$sys: a proxy process is gone (pids $pids)"
    record "$sys" rss_mib "$(awk -v k="$a" 'BEGIN { printf "%.2f", k / 1024 }')"
  fi

  bench_alive "${PROXY_PID:-$$}" || bench_die "$sys: the proxy died during run $run"
  check_path "$sys"
}

# One run, one fresh lab: direct and the proxies with nothing enrolled; sluice with the server pod
# enrolled (its ztunnel terminates the waypoint's HBONE); then the client pod enrolled too for
# the full path.
FULL_SYS=""
one_run() {
  local run=$1
  lab_up
  if wanted direct; then measure_system "$run" direct; fi
  measure_proxy "$run" haproxy start_haproxy
  measure_proxy "$run" haproxy-mtls start_haproxy_mtls
  measure_proxy "$run" haproxy-tcp start_haproxy_tcp
  # The server pod is outside the mesh: the waypoint sends plain HTTP, as HAProxy.
  measure_proxy "$run" sluice-plain start_waypoint
  if wanted sluice || wanted sluice-full-path; then
    mesh_phase server "$SERVER_POD" node-b
    start_waypoint
    if wanted sluice; then measure_system "$run" sluice; fi
    if wanted sluice-full-path; then measure_full_path "$run"; fi
  fi
  lab_down || bench_die "lab down failed"
}

# measure_proxy RUN SYS START: SYS, if wanted, through the proxy START starts; stopped after.
measure_proxy() {
  wanted "$2" || return 0
  "$3"
  measure_system "$1" "$2"
  stop_proxy
}

measure_full_path() {
  local run=$1 full
  mesh_phase full "$CLIENT_POD" node-a
  if bench_wait_until 10 ztunnel_redirects; then full=sluice-full-path; else full=sluice-full-path-passthrough; fi
  if [[ -n $FULL_SYS && $full != "$FULL_SYS" ]]; then
    bench_die "run $run measures $full where an earlier run measured $FULL_SYS"
  fi
  FULL_SYS=$full
  [[ $full == sluice-full-path ]] ||
    bench_warn "ztunnel does not send $SERVICE_VIP:$SERVICE_PORT to the waypoint (no sluice.dev/use-waypoint support in this build): measuring the client pod's ztunnel passing plain TCP to the waypoint's plain listener instead ($full)"
  measure_system "$run" "$full"
}

# --- report --------------------------------------------------------------------------------

print_table() {
  FULL_SYS=${FULL_SYS:-sluice-full-path} # (not measured: --systems)
  local json=$1 full_short=${FULL_SYS#sluice-}
  printf '\nbench/waypoint.sh: %s run(s), %s s per test (%s s at %s requests/s), ztunnel --workers 1, waypoint 1 worker, HAProxy nbthread 1, %s CPUs (%s), nothing pinned\n' \
    "$RUNS" "$DURATION" "$PACED_SECONDS" "$PACED_RATE" "$NCPU" "$ONLINE_CPUS"
  bench_load_note "$NCPU" "$LOAD_BEFORE"
  printf 'medians; ratios are to direct unless named; "better" says which way is good; - = not measured\n\n'
  {
    printf 'metric\tdirect\tsluice\thaproxy\thaproxy-mtls\tsluice-plain\thaproxy-tcp\t%s\tsluice/direct\thaproxy/direct\tmtls/direct\tplain/direct\ttcp/direct\t%s/direct\tsluice/mtls\tplain/haproxy\tbetter\n' \
      "$FULL_SYS" "$full_short"
    jq -r --arg metrics "${METRICS[*]}" --arg full "$FULL_SYS" '
      def fmt: if . == null then "-" elif . >= 100 then (. * 10 | round / 10 | tostring)
               else (. * 1000 | round / 1000 | tostring) end;
      def ratio($a; $b): if $a == null or $b == null or $b == 0 then "-"
                         else ($a / $b * 100 | round / 100 | tostring) + "x" end;
      .results as $r
      | $metrics | split(" ")[] as $m
      | ($r | map(select(.metric == $m)) | map({(.system): .median}) | add // {}) as $by
      | [$m, ($by.direct | fmt), ($by.sluice | fmt), ($by.haproxy | fmt), ($by["haproxy-mtls"] | fmt),
         ($by["sluice-plain"] | fmt), ($by["haproxy-tcp"] | fmt), ($by[$full] | fmt),
         ratio($by.sluice; $by.direct), ratio($by.haproxy; $by.direct),
         ratio($by["haproxy-mtls"]; $by.direct), ratio($by["sluice-plain"]; $by.direct),
         ratio($by["haproxy-tcp"]; $by.direct), ratio($by[$full]; $by.direct),
         ratio($by.sluice; $by["haproxy-mtls"]), ratio($by["sluice-plain"]; $by.haproxy),
         (if ($m | test("rps$")) then "higher" else "lower" end)]
      | @tsv' "$json"
  } | column -t -s $'\t'
  echo
  echo "targets (issue 4), on the medians:"
  jq -r '.results | map({key: "\(.system) \(.metric)", value: .median}) | from_entries as $v
    | def line($what; $ok; $shown):
        "  \($what): " + (if $ok == null then "not measured" elif $ok then "met" else "MISSED" end) + " (\($shown))";
      def r($x): if $x == null then null else ($x * 100 | round / 100) end;
      ($v["sluice http1_c64_rps"]) as $s | ($v["direct http1_c64_rps"]) as $d
      | ($v["sluice http1_c1_p99_us"]) as $sp | ($v["haproxy http1_c1_p99_us"]) as $hp
      | ($v["sluice at_1k_rps_vcpu"]) as $cpu | ($v["sluice rss_mib"]) as $rss
      | ($v["haproxy-tcp at_1k_rps_vcpu"]) as $fcpu
      # The other proxies beside the throughput target: where none of them meets it either, no
      # proxy on this path does on this machine.
      | ([["haproxy", "sluice-plain", "haproxy-tcp"][] as $o | ($v["\($o) http1_c64_rps"]) as $x
          | select($x and $d) | {o: $o, ratio: ($x / $d)}]) as $others
      # The CPU floor: an L4 proxy that parses nothing. Where it misses the target too, no proxy
      # on this path can meet it on this machine.
      | def floor($ok; $shown): if $ok == null then empty
          else "    floor, haproxy-tcp (copies bytes, parses nothing): \($shown)" +
               (if $ok then "" else ": the floor misses it too" end) end;
      line("http1_c64_rps sluice >= 0.70x direct";
             (if $s and $d then $s / $d >= 0.7 else null end);
             (if $s and $d then "\(r($s / $d))x" else "-" end)),
        (if $others == [] then empty
         else "    the other proxies on one hop: " + ($others | map("\(.o) \(r(.ratio))x") | join(", ")) +
              (if ($others | all(.ratio < 0.7)) then ": none meets it" else "" end) end),
        line("http1_c1_p99_us sluice <= haproxy"; (if $sp and $hp then $sp <= $hp else null end); "\($sp // "-") vs \($hp // "-") us"),
        ([["sluice-plain", "haproxy'"'"'s path"], ["haproxy-mtls", "sluice'"'"'s shape, from HAProxy"]][] as [$o, $why]
         | ($v["\($o) http1_c1_p99_us"]) as $x | select($x) | "    \($o) (\($why)): \($x) us"),
        line("at_1k_rps_vcpu sluice <= 0.03"; (if $cpu then $cpu <= 0.03 else null end); "\($cpu // "-") vCPU"),
        (($v["sluice-plain at_1k_rps_vcpu"]) as $pc | ($v["haproxy at_1k_rps_vcpu"]) as $hc
         | if $pc then "    sluice-plain: \($pc) vCPU" + (if $hc then ", \(r($pc / $hc))x haproxy" else "" end)
           else empty end),
        floor((if $fcpu then $fcpu <= 0.03 else null end); "\($fcpu // "-") vCPU"),
        line("rss_mib sluice <= 20"; (if $rss then $rss <= 20 else null end); "\($rss // "-") MiB")' "$json"
  awk -F'\t' -v runs="$RUNS" '
    $2 == "http1_c64_rps" { v[$1, ++n[$1]] = $3 }
    END {
      if (n["direct"] != runs || n["sluice"] != runs) exit
      for (r = 1; r <= runs; r++) { line = line sprintf("%s%.2f", r == 1 ? "" : "/", v["sluice", r] / v["direct", r]); met += v["sluice", r] >= 0.7 * v["direct", r] }
      printf "  sluice/direct http1_c64_rps per run (each against its own direct): %s; 0.70x met in %d of %d runs\n", line, met, runs
    }' "$SAMPLES"
  local full_line
  if [[ $FULL_SYS == sluice-full-path ]]; then
    full_line="client pod (enrolled) -> VIP $SERVICE_VIP:$SERVICE_PORT captured by ztunnel node-a ==(mTLS HBONE)==> waypoint ==(mTLS HBONE)==> ztunnel node-b -> server pod"
  else
    full_line="NOT the full path: this ztunnel build does not send service traffic to a waypoint (sluice.dev/use-waypoint); measured instead: client pod (enrolled) -> ztunnel node-a (captured, plain TCP passthrough, no HBONE) -> waypoint plain listener -> (mTLS HBONE) -> ztunnel node-b -> server pod"
  fi
  cat <<EOF

How each figure is taken (lab: client pod $CLIENT_IP and proxy pod $PROXY_IP on node-a, server pod $SERVER_IP on node-b, all on the same $NCPU CPUs):
  direct           nothing enrolled: client pod -> node-a -> bridge -> node-b -> server pod (HAProxy 'http-request return' app, 1 thread)
  sluice           server pod enrolled, client pod not: client pod -> sluice-waypoint --plain (proxy pod, routes of VirtualService $NS/server)
                   ==(mTLS HBONE)==> ztunnel node-b -> server pod. Includes the destination ztunnel hop and its mTLS;
                   the haproxy path has neither (plain HTTP to the application)
  haproxy          nothing enrolled: client pod -> HAProxy 2.6 L7 (proxy pod, same routes and retries, haproxy/l7-proxy.cfg.in) -> server pod
  sluice-plain     nothing enrolled: client pod -> sluice-waypoint --plain (the same routes) -> server pod over plain HTTP, as the
                   waypoint reaches a pod outside the mesh: the haproxy path exactly
  haproxy-tcp      nothing enrolled: client pod -> HAProxy 2.6 in mode tcp (proxy pod, haproxy/l4-proxy.cfg.in) -> server pod: the
                   haproxy path with no HTTP at all: the CPU floor of a proxy hop here (its reads, writes and wake-ups)
  haproxy-mtls     the same L7 proxy ==(mTLS, TLS 1.3, P-256, reused connections)==> HAProxy server side on node-b ($NODE_B_IP, TCP mode,
                   server.cfg.in) -> server pod: sluice's shape (proxy, mTLS hop, L4 proxy at the destination) built from HAProxy
  $FULL_SYS  $full_line
  http1_c64_rps    wrk -t1 -c$CONNS -d${DURATION}s, HTTP/1.1 keep-alive, after a 1 s warm-up
  http2_c64_rps    h2load -t1 -c$CONNS -m1 -D $DURATION (h2c prior knowledge) from the client; every proxy speaks HTTP/1.1 to the application
  http1_c1_p50/p99 wrk -t1 -c1 -d${DURATION}s: one request at a time on one connection, wrk's latency histogram
  at_1k_rps_vcpu   a paced open-loop client (python, $PACED_CONNS keep-alive connections) at $PACED_RATE requests/s for $PACED_SECONDS s; CPU seconds
                   per second (utime+stime, /proc/PID/stat) of the L7 proxy: HAProxy, or the waypoint (the shares of the
                   destination ztunnel and of the server-side HAProxy are in the log); $FULL_SYS: waypoint + both ztunnels, summed
  rss_mib          VmRSS of the same processes after the system's tests
EOF
}

# --- main ----------------------------------------------------------------------------------

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_log "lab wp-$$, binaries from $BUILD_DIR, $RUNS run(s) of ${DURATION}s tests"
bench_make_certs "$CERTS" "$NS" client server || bench_die "openssl could not make the HAProxy certificates"
render_configs
for ((run = 1; run <= RUNS; run++)); do one_run "$run"; done

bench_finish "$SAMPLES" waypoint "$RUNS" "${SYSTEMS[*]}" "${METRICS[*]}" "$JSON_OUT" "$BENCH_FAILURES" print_table
