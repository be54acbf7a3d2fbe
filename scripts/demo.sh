#!/usr/bin/env bash
# The local mesh demo: a two-node mesh on this machine (sluicectl lab), each node running the
# node agent and ztunnel; unmodified pods (curl, python's http.server). Labelling a namespace
# meshes its pods live: their traffic is captured by eBPF and carried over mTLS HBONE; the
# identities show in the access logs and Istio metrics; a pod outside the mesh still reaches
# them; removing the label returns them to plain traffic. Everything is torn down at the end.
# Sets up a fresh Debian 12 machine first; needs root (namespaces, cgroups, BPF).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh needs root: it installs packages and builds a lab of network namespaces" >&2
  exit 1
fi
scripts/install-deps.sh
build=${BUILD_DIR:-build}
echo "==> building"
cmake -S . -B "$build" -G Ninja >/dev/null
ninja -C "$build" sluice-ztunnel sluice-agent sluicectl >/dev/null
sluicectl=$build/cli/sluicectl agent=$build/agent/sluice-agent ztunnel=$build/ztunnel/sluice-ztunnel

work=$(mktemp -d /tmp/sluice-demo.XXXXXX)
lab=(--state-dir "$work/state" --name "demo-$$")
cleanup() {
  echo "==> tearing down"
  "$sluicectl" lab down "${lab[@]}" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# shellcheck source=scripts/lab-mesh.sh
source scripts/lab-mesh.sh

mkdir -p "$work/config" "$work/www"
echo "hello from shop/server" >"$work/www/index.html"
cat >"$work/config/mesh.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, uid: 0d3c6c1e-0000-4000-8000-000000000001, labels: {app: client}}
spec: {nodeName: node-a, serviceAccountName: client}
status: {phase: Running, podIP: 198.18.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: shop, uid: 0d3c6c1e-0000-4000-8000-000000000002, labels: {app: server, version: v1}}
spec:
  nodeName: node-b
  serviceAccountName: server
  containers:  # the lab runs command + args in the pod (no images here)
    - name: web
      command: [python3, -m, http.server, --bind, 198.18.2.10, --directory, $work/www, "8080"]
      ports: [{containerPort: 8080}]
status: {phase: Running, podIP: 198.18.2.10}
---
apiVersion: v1
kind: Pod
metadata: {name: outsider, namespace: legacy, uid: 0d3c6c1e-0000-4000-8000-000000000003}
spec: {nodeName: node-a}
status: {phase: Running, podIP: 198.18.1.20}
YAML

step "sluicectl validate"
"$sluicectl" validate "$work/config"

step "sluicectl lab up: two nodes (agent + ztunnel each), three pods (netns + cgroup + containers)"
"$sluicectl" lab up --config "$work/config" "${lab[@]}"
run=$(lab_field runDir)
node_b=$(lab_node_field node-b ipv4)
eventually 20 curl -fs --noproxy '*' "http://$node_b:15021/healthz/ready" ||
  { echo "node-b's ztunnel did not become ready" >&2; cat "$run"/*-ztunnel.log >&2; exit 1; }

curl_as() { "$sluicectl" lab exec "${lab[@]}" "$1" -- curl -fsS --noproxy '*' -m 5 "$2"; }
entries() { wc -l <"$run/$1-access.log" 2>/dev/null || echo 0; }
show_log() {
  python3 - "$run/$1-access.log" "$2" <<'PY'
import json, sys
for line in open(sys.argv[1]).readlines()[int(sys.argv[2]):]:
    r = json.loads(line)
    print(f"  {r['direction']:8} {r['src']:>20} ({r['src_identity'] or 'no identity'}) -> "
          f"{r['dst']} ({r['dst_identity'] or 'no identity'}) {r['error'] or 'ok'}")
PY
}

step "before the label: shop/client -> shop/server is plain TCP (ztunnel sees nothing)"
eventually 10 curl_as shop/client http://198.18.2.10:8080/index.html
curl_as shop/client http://198.18.2.10:8080/index.html
echo "  node-b ztunnel access log: $(entries node-b) entries"

step "kubectl label namespace shop sluice.dev/dataplane-mode=ambient (here: edit the YAML)"
sed -i 's/metadata: {name: shop}/metadata: {name: shop, labels: {sluice.dev\/dataplane-mode: ambient}}/' \
  "$work/config/mesh.yaml"
eventually 20 grep -q "pod shop/server enrolled" "$run/node-b-agent.log"
eventually 20 grep -q "pod shop/client enrolled" "$run/node-a-agent.log"
grep -h "enrolled" "$run"/node-*-agent.log | sed 's/^/  /'

step "after the label: the same curl, no change to the pods, now over mTLS HBONE"
a=$(entries node-a) b=$(entries node-b)
curl_as shop/client http://198.18.2.10:8080/index.html
eventually 5 test "$(entries node-b)" -gt "$b"
echo "  node-a (outbound):"; show_log node-a "$a"
echo "  node-b (inbound):"; show_log node-b "$b"

step "Istio metrics on node-b (reporter=destination)"
curl -fs --noproxy '*' "http://$node_b:15020/metrics" | python3 -c '
import re, sys
for line in sys.stdin:
    m = re.match(r"(istio_tcp_[a-z_]+)[{](.*)[}] (\S+)", line)
    if not m: continue
    labels = dict(re.findall(r"([a-z_]+)=.([^\x22]*).", m.group(2)))
    src, dst, policy = (labels[k] for k in ("source_principal", "destination_principal", "connection_security_policy"))
    print(f"  {m.group(1):38} {src} -> {dst} [{policy}] = {m.group(3)}")'

step "a pod outside the mesh (legacy/outsider) still reaches shop/server (PERMISSIVE)"
b=$(entries node-b)
curl_as legacy/outsider http://198.18.2.10:8080/index.html
eventually 5 test "$(entries node-b)" -gt "$b"
show_log node-b "$b"

step "kubectl label namespace shop sluice.dev/dataplane-mode- (remove the label)"
sed -i 's/metadata: {name: shop, labels: {sluice.dev\/dataplane-mode: ambient}}/metadata: {name: shop}/' \
  "$work/config/mesh.yaml"
eventually 20 grep -q "pod shop/server unenrolled" "$run/node-b-agent.log"
grep -h "unenrolled" "$run"/node-*-agent.log | sed 's/^/  /'
b=$(entries node-b)
curl_as shop/client http://198.18.2.10:8080/index.html
echo "  node-b ztunnel access log: $(($(entries node-b) - b)) new entries: plain TCP again"

step "demo complete"
