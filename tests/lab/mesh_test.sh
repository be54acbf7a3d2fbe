#!/usr/bin/env bash
# The mesh end to end in the local lab, with real capture: two nodes (each an agent and a
# ztunnel in the node's netns and cgroup), pods as netns + cgroup, unmodified clients (curl).
# The lab and its data plane come from `sluicectl lab up` alone, as a user would start them.
# Checks: cross-node and same-node pod-to-pod over mTLS HBONE (identities in the access logs);
# service VIP to endpoint; IPv6; an opted-out pod stays plain; a pod outside the mesh reaches a
# meshed pod under PERMISSIVE and is refused under STRICT; ztunnel restart (the agent replays);
# agent restart (capture continues, open connections survive); removing the namespace label
# returns pods to plain traffic.
# Usage: tests/lab/mesh_test.sh BUILD_DIR [on|off]: the second argument switches the agents'
# local-hop acceleration (default off). Needs root; skips (77) otherwise, fails under CI=true.
set -euo pipefail

build=${1:-build}
acceleration=${2:-off}
sluicectl=$build/cli/sluicectl agent=$build/agent/sluice-agent ztunnel=$build/ztunnel/sluice-ztunnel
if [[ $(id -u) -ne 0 ]]; then
  [[ ${CI:-} == true ]] && { echo "FAIL: the mesh lab needs root (CI=true)"; exit 1; }
  echo "SKIP: the mesh lab needs root"; exit 77
fi

work=$(mktemp -d /tmp/sluice-mesh-test.XXXXXX)
checks=0 failures=0
lab=(--state-dir "$work/state" --name "mesh-$$")
run=  # the lab's run directory (logs, pins), known once it is up
cleanup() {
  if ((failures > 0)) && [[ -n $run ]]; then
    mkdir -p /tmp/sluice-mesh-test-logs && cp "$run"/*.log /tmp/sluice-mesh-test-logs/ 2>/dev/null
  fi
  "$sluicectl" lab down "${lab[@]}" >/dev/null 2>&1 || true  # kills every process of the lab
  rm -rf "$work"
}
trap cleanup EXIT
pass() { echo "PASS: $*"; checks=$((checks + 1)); }
fail() { echo "FAIL: $*"; checks=$((checks + 1)); failures=$((failures + 1)); }
# shellcheck source=scripts/lab-mesh.sh
source "$(dirname "$0")/../../scripts/lab-mesh.sh"

mkdir -p "$work/config" "$work/www"
echo "hello from server" >"$work/www/index.html"
cat >"$work/config/mesh.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {sluice.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, uid: 7f1c0a00-0000-4000-8000-000000000001, labels: {app: client}}
spec: {nodeName: node-a, serviceAccountName: client}
status: {phase: Running, podIP: 198.18.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: shop, uid: 7f1c0a00-0000-4000-8000-000000000002, labels: {app: server}}
spec:
  nodeName: node-b
  serviceAccountName: server
  containers:
    - name: web
      command: [python3, -m, http.server, --bind, 198.18.2.10, --directory, $work/www, "8080"]
      ports: [{containerPort: 8080}]
status: {phase: Running, podIP: 198.18.2.10}
---
apiVersion: v1
kind: Pod
metadata: {name: outsider, namespace: legacy, uid: 7f1c0a00-0000-4000-8000-000000000003}
spec: {nodeName: node-a}
status: {phase: Running, podIP: 198.18.1.20}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, uid: 7f1c0a00-0000-4000-8000-000000000004, labels: {app: db}}
spec:
  nodeName: node-a
  serviceAccountName: db
  containers:
    - name: web
      command: [python3, -m, http.server, --bind, "::", --directory, $work/www, "8080"]
      ports: [{containerPort: 8080}]
status: {phase: Running, podIPs: [{ip: 198.18.1.30}, {ip: "fd00:5::1:30"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client6, namespace: shop, uid: 7f1c0a00-0000-4000-8000-000000000006, labels: {app: client6}}
spec: {nodeName: node-b, serviceAccountName: client6}
status: {phase: Running, podIPs: [{ip: 198.18.2.60}, {ip: "fd00:5::2:60"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: shop, uid: 7f1c0a00-0000-4000-8000-000000000005, labels: {sluice.dev/dataplane-mode: none}}
spec: {nodeName: node-a, serviceAccountName: batch}
status: {phase: Running, podIP: 198.18.1.40}
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: shop}
spec:
  clusterIP: 198.19.0.10
  selector: {app: server}
  ports: [{name: http, port: 80, targetPort: 8080}]
YAML
# lab up returns once both agents have their ztunnel and both web containers listen.
if "$sluicectl" lab up --config "$work/config" "${lab[@]}" --local-acceleration "$acceleration" \
  --ztunnel-arg --no-admin >"$work/up.out" 2>&1; then
  pass "lab up started two nodes (agent + ztunnel each) and the pods' containers"
else
  fail "lab up: $(cat "$work/up.out")"; exit 1
fi
run=$(lab_field runDir)

enrolled() { grep -q "pod $1 enrolled" "$run/$2-agent.log"; }
if eventually 20 enrolled shop/client node-a && eventually 20 enrolled shop/server node-b; then
  pass "agents enrolled shop/client (node-a) and shop/server (node-b) and ztunnel took them"
else
  fail "pods not enrolled"; cat "$run"/*-agent.log "$run"/*-ztunnel.log; exit 1
fi
grep -q "legacy/outsider enrolled" "$run/node-a-agent.log" && fail "outsider enrolled" ||
  pass "the pod of an unlabelled namespace is not enrolled"

# log_has FILE key=value...: a JSON access-log line with all those fields (value: a regex).
log_has() {
  python3 - "$@" <<'PY'
import json, re, sys
path, wanted = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
for line in open(path):
    record = json.loads(line)
    if all(re.fullmatch(v, str(record.get(k, ""))) for k, v in wanted):
        sys.exit(0)
sys.exit(1)
PY
}
curl_as() { "$sluicectl" lab exec "${lab[@]}" "$1" -- curl -fsS --noproxy '*' -m 5 "$2"; }
eventually 10 curl_as shop/client http://198.18.2.10:8080/index.html || true
body=$(curl_as shop/client http://198.18.2.10:8080/index.html || true)
[[ $body == "hello from server" ]] && pass "client -> server across nodes: '$body'" ||
  fail "client -> server across nodes got '$body'"
mtls_logged() {
  log_has "$run/node-a-access.log" direction=outbound src_identity=spiffe://cluster.local/ns/shop/sa/client \
    dst_identity=spiffe://cluster.local/ns/shop/sa/server error= &&
    log_has "$run/node-b-access.log" direction=inbound src_identity=spiffe://cluster.local/ns/shop/sa/client \
      dst_identity=spiffe://cluster.local/ns/shop/sa/server dst=198.18.2.10:8080
}
eventually 10 mtls_logged && pass "both ztunnels logged the connection with both SPIFFE identities (mTLS HBONE)" ||
  fail "no mTLS record in the access logs"

body=$(curl_as legacy/outsider http://198.18.2.10:8080/index.html || true)
[[ $body == "hello from server" ]] && pass "PERMISSIVE: a pod outside the mesh reaches the meshed server" ||
  fail "PERMISSIVE: outsider got '$body'"
plain_logged() {
  log_has "$run/node-b-access.log" direction=inbound 'src=198\.18\.1\.20:[0-9]+' dst=198.18.2.10:8080 src_identity=
}
eventually 10 plain_logged && pass "that plaintext went through node-b's ztunnel (steered to 15006)" ||
  fail "outsider's plaintext bypassed ztunnel"

# Same node: client and db both on node-a, one ztunnel on both ends.
body=$(curl_as shop/client http://198.18.1.30:8080/index.html || true)
same_node() {
  log_has "$run/node-a-access.log" direction=outbound dst_identity=spiffe://cluster.local/ns/shop/sa/db \
    src_identity=spiffe://cluster.local/ns/shop/sa/client &&
    log_has "$run/node-a-access.log" direction=inbound dst_identity=spiffe://cluster.local/ns/shop/sa/db
}
[[ $body == "hello from server" ]] && eventually 10 same_node &&
  pass "same node: client -> db over HBONE through node-a's ztunnel" || fail "same node: got '$body'"

# A service VIP is resolved to an endpoint by the client's ztunnel.
body=$(curl_as shop/client http://198.19.0.10/index.html || true)
vip_logged() {
  log_has "$run/node-a-access.log" direction=outbound dst=198.18.2.10:8080 \
    dst_identity=spiffe://cluster.local/ns/shop/sa/server
}
[[ $body == "hello from server" ]] && eventually 10 vip_logged &&
  pass "service VIP 198.19.0.10:80 -> endpoint 198.18.2.10:8080 over HBONE" ||
  fail "service VIP: got '$body'"

# IPv6, across nodes: client6 (node-b) -> db (node-a).
body=$(curl_as shop/client6 "http://[fd00:5::1:30]:8080/index.html" || true)
v6_logged() {
  log_has "$run/node-b-access.log" direction=outbound 'dst=\[fd00:5::1:30\]:8080' \
    dst_identity=spiffe://cluster.local/ns/shop/sa/db
}
[[ $body == "hello from server" ]] && eventually 10 v6_logged &&
  pass "IPv6: client6 -> [fd00:5::1:30]:8080 over HBONE" || fail "IPv6: got '$body'"

# An opted-out pod keeps plain traffic: its ztunnel never sees its connections.
body=$(curl_as shop/batch http://198.18.2.10:8080/index.html || true)
opted_out_captured() { log_has "$run/node-a-access.log" direction=outbound 'src=198\.18\.1\.40.*'; }
if [[ $body == "hello from server" ]] && ! opted_out_captured; then
  pass "opt-out pod (sluice.dev/dataplane-mode=none) is not captured"
else
  fail "opt-out pod: got '$body' or was captured"
fi
grep -q "shop/batch enrolled" "$run/node-a-agent.log" && fail "opt-out pod enrolled" ||
  pass "opt-out pod is not enrolled"

# ztunnel restarts on node-b: the agent replays its pods and traffic flows again.
"$sluicectl" lab restart "${lab[@]}" --node node-b ztunnel >/dev/null ||
  fail "lab restart --node node-b ztunnel failed"
served_again() { [[ $(curl_as shop/client http://198.18.2.10:8080/index.html) == "hello from server" ]]; }
eventually 20 served_again && pass "ztunnel restart: the agent replays the pods and traffic works again" ||
  fail "ztunnel restart: traffic did not come back"

# With acceleration on, the client's hop to its ztunnel skipped the TCP stack: the sk_msg
# program counted redirected messages (index 2 of node-a's accel_counters).
redirected() {
  bpftool -j map dump pinned "$run/bpf/node-a/accel_counters" | python3 -c '
import json, sys
total = 0
for entry in json.load(sys.stdin):
    entry = entry.get("formatted", entry)
    key = entry["key"]
    key = int(key) if not isinstance(key, list) else int(key[0], 16)
    if key != 2: continue
    for cpu in entry["values"]:
        value = cpu["value"]
        total += int(value) if not isinstance(value, list) else int.from_bytes(bytes(int(b, 16) for b in value), "little")
print(total)
sys.exit(0 if total > 0 else 1)'
}
if [[ $acceleration == on ]]; then
  redirected >/dev/null && pass "acceleration: node-a redirected $(redirected) messages on the local hop" ||
    fail "acceleration on, but nothing was redirected"
fi

# A long-lived connection, opened while enrolled: it must survive the agent restarting and the
# namespace being unenrolled (capture acts at connect time; ztunnel keeps open tunnels).
cat >"$work/echo.py" <<'PY'
import socket, sys, threading
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
def serve(conn):
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
PY
cat >"$work/long.py" <<'PY'
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
while True:
    with open(sys.argv[3]) as commands:
        for line in commands:
            word = line.strip()
            try:
                sock.sendall(word.encode() + b"\n")
                reply = sock.recv(4096).decode().strip()
                result = "ok " + word if reply == word else "bad " + reply
            except OSError as error:
                result = "fail " + word + " " + str(error)
            with open(sys.argv[4], "a") as out:
                print(result, file=out, flush=True)
PY
mkfifo "$work/long.ctl"
"$sluicectl" lab exec "${lab[@]}" shop/server -- python3 "$work/echo.py" 198.18.2.10 9000 >/dev/null 2>&1 &
disown
listening() { "$sluicectl" lab exec "${lab[@]}" shop/server -- python3 -c "import socket; socket.create_connection(('198.18.2.10', 9000), timeout=1)"; }
eventually 10 listening || true
"$sluicectl" lab exec "${lab[@]}" shop/client -- python3 "$work/long.py" 198.18.2.10 9000 \
  "$work/long.ctl" "$work/long.out" >"$work/long.err" 2>&1 &
disown
long_ping() {
  echo "$1" >"$work/long.ctl"
  eventually 5 grep -q "^ok $1\$" "$work/long.out"
}
long_ping first && pass "long-lived connection opened while enrolled works" ||
  fail "long-lived connection: $(cat "$work/long.out" "$work/long.err" 2>/dev/null)"

cat >"$work/config/strict.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: STRICT}}
YAML
refused() { ! curl_as legacy/outsider http://198.18.2.10:8080/index.html; }
eventually 10 refused && pass "STRICT: the outsider's plaintext is refused" || fail "STRICT not enforced"
body=$(curl_as shop/client http://198.18.2.10:8080/index.html || true)
[[ $body == "hello from server" ]] && pass "STRICT: meshed client still served over mTLS" ||
  fail "STRICT broke the meshed client: '$body'"

# The agent restarts: capture stays pinned, connections keep working, before and after it is back.
connected_before=$(grep -c "ztunnel connected" "$run/node-a-agent.log")
"$sluicectl" lab restart "${lab[@]}" --node node-a agent >/dev/null || fail "lab restart --node node-a agent failed"
before=$(grep -c '"direction":"outbound"' "$run/node-a-access.log" || true)
body=$(curl_as shop/client http://198.18.2.10:8080/index.html || true)
[[ $body == "hello from server" ]] && pass "agent restart: the client still reaches the server" ||
  fail "agent restart broke traffic: '$body'"
captured_more() { (( $(grep -c '"direction":"outbound"' "$run/node-a-access.log") > before )); }
eventually 5 captured_more && pass "agent restart: capture continues (ztunnel-a still sees the client's connections)" ||
  fail "capture stopped with the agent"
long_ping after-agent-restart && pass "agent restart: the long-lived connection is not dropped" ||
  fail "agent restart dropped the long-lived connection: $(tail -1 "$work/long.out")"
reconnected() { (( $(grep -c "ztunnel connected" "$run/node-a-agent.log") > connected_before )); }
eventually 10 reconnected && pass "agent restart: the new agent took over its ztunnel" ||
  fail "the restarted agent never reconnected to ztunnel"

# Unlabel the namespace: pods return to plain traffic (after STRICT is removed again).
rm "$work/config/strict.yaml"
sed -i 's/labels: {sluice.dev\/dataplane-mode: ambient}/labels: {}/' "$work/config/mesh.yaml"
unenrolled() { grep -q "pod shop/server unenrolled" "$run/node-b-agent.log"; }
eventually 10 unenrolled && pass "removing the label unenrolls the server" || fail "server still enrolled"
lines_b=$(wc -l <"$run/node-b-access.log")
body=$(curl_as shop/client http://198.18.2.10:8080/index.html || true)
[[ $body == "hello from server" ]] && pass "unenrolled: the client still reaches the server" ||
  fail "unenrolled traffic broken: '$body'"
(( $(wc -l <"$run/node-b-access.log") == lines_b )) && pass "unenrolled: node-b's ztunnel no longer sees that traffic" ||
  fail "node-b's ztunnel still carried traffic after unenrollment"
long_ping after-unenroll && pass "unenrolled: the connection opened while enrolled is not dropped" ||
  fail "unenrollment dropped the long-lived connection: $(tail -1 "$work/long.out")"

echo "$((checks - failures)) passed, $failures failed"
((failures == 0 && checks > 0))
