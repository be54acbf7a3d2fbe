#!/usr/bin/env bash
# The local mesh demo: a two-node mesh on this machine (sluicectl lab), each node running the
# node agent and ztunnel; unmodified pods (curl, python's http.server). Labelling a namespace
# meshes its pods live: their traffic is captured by eBPF and carried over mTLS HBONE; the
# identities show in the access logs and Istio metrics; a pod outside the mesh still reaches
# them; then a waypoint takes the reviews service's L7 traffic, routed by Istio's own
# VirtualService (a 90/10 split, a retried failure, a timeout, each shown in the waypoint's
# Istio metrics); removing the label returns the pods to plain traffic. Everything is torn
# down at the end.
# Sets up a fresh Debian 12 machine first; needs root (namespaces, cgroups, BPF).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh needs root: it installs packages and builds a lab of network namespaces" >&2
  exit 1
fi
scripts/install-deps.sh
build=${BUILD_DIR:-build}
scripts/build.sh "$build" sluice-ztunnel sluice-agent sluice-waypoint sluicectl
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
# The reviews service (v1 on node-b, v2 on node-a) and the namespace's waypoint pod: a Gateway
# of class sluice-waypoint, run as its own (not enrolled) pod, as Istio's waypoint Deployment.
{
  lab_app_pod shop reviews-v1 node-b 198.18.2.31 0d3c6c1e-0000-4000-8000-000000000011 v1
  lab_app_pod shop reviews-v2 node-a 198.18.1.32 0d3c6c1e-0000-4000-8000-000000000012 v2
  lab_waypoint shop node-a 198.18.1.50 0d3c6c1e-0000-4000-8000-000000000020
} >>"$work/config/mesh.yaml"
reviews_service() {  # the Service, with the labels given ("" for none)
  cat >"$work/config/reviews.yaml.tmp" <<YAML
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop, labels: {$1}}
spec:
  clusterIP: 198.19.0.20
  selector: {app: reviews}
  ports: [{name: http, port: 80, targetPort: 8080}]
YAML
  mv -f "$work/config/reviews.yaml.tmp" "$work/config/reviews.yaml"
}
reviews_service ""

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
grew() { (($(entries "$1") > $2)); }  # NODE COUNT: its access log has more lines than COUNT
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
eventually 5 grew node-b "$b"
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
eventually 5 grew node-b "$b"
show_log node-b "$b"

step "a waypoint for shop/reviews: label the Service and apply Istio's VirtualService + DestinationRule"
cp examples/waypoint/reviews-routes.yaml "$work/config/reviews-routes.yaml"

reviews_service "sluice.dev/use-waypoint: waypoint"
sed -n '/^apiVersion: networking/,$p' "$work/config/reviews-routes.yaml" | head -13 | sed 's/^/  /'
waypoint_log=$run/shop_waypoint-0_waypoint.log
through_waypoint() {
  curl_as shop/client http://198.19.0.20/ >/dev/null && grep -q '"authority":"198.19.0.20:80"' "$waypoint_log"
}
eventually 20 through_waypoint || { echo "reviews traffic never reached the waypoint" >&2; tail "$waypoint_log" >&2; exit 1; }
waypoint_metric() {  # istio_requests_total of the reviews service, one line a series
  "$sluicectl" lab exec "${lab[@]}" shop/waypoint-0 -- curl -s http://127.0.0.1:15020/metrics |
    python3 -c "$(cat <<'PY'
import re, sys
for line in sys.stdin:
    m = re.match(r"istio_requests_total[{](.*)[}] (\S+)", line)
    if not m:
        continue
    labels = dict(re.findall(r'([a-z_]+)="([^"]*)"', m.group(1)))
    if labels.get("destination_service_name") != "reviews":
        continue
    shown = ", ".join(f"{k}={labels[k]}" for k in
                      ("reporter", "destination_version", "response_code", "response_flags"))
    print(f"  istio_requests_total{{{shown}}} = {m.group(2)}")
PY
)"
}

retry_metrics() {  # Envoy's per-cluster retry statistics of the reviews service
  "$sluicectl" lab exec "${lab[@]}" shop/waypoint-0 -- curl -s http://127.0.0.1:15020/metrics |
    grep -E '^envoy_cluster_upstream_rq_retry(_success|_limit_exceeded)?[{].*reviews' |
    sed 's/^/  /'
}

step "the 90/10 split: 200 requests from shop/client to the reviews VIP"
urls=$(printf 'http://198.19.0.20/ %.0s' $(seq 200))
# shellcheck disable=SC2086
"$sluicectl" lab exec "${lab[@]}" shop/client -- curl -s $urls | sort | uniq -c | sed 's/^/  /'
waypoint_metric

step "a failing endpoint: 503 twice, then 200; the waypoint retries (retryOn: 5xx), the client sees 200"
curl_as shop/client http://198.19.0.20/fail/demo/2 | sed 's/^/  /'
grep '"path":"/fail/demo/2"' "$waypoint_log" | python3 -c "$(cat <<'PY'
import json, sys
r = json.loads(sys.stdin.readline())
print(f"  waypoint access log: {r['response_code']} after {r['attempts']} attempts via {r['upstream_cluster']}")
PY
)"
waypoint_metric | grep 'response_code=200'
retry_metrics

step "a slow endpoint (2.5 s per try, perTryTimeout 2s): the 5 s route timeout answers 504 (flag UT)"
"$sluicectl" lab exec "${lab[@]}" shop/client -- curl -s -o /dev/null -w '  HTTP %{http_code} after %{time_total} s\n' \
  http://198.19.0.20/slow/2500
waypoint_metric | grep -E 'response_code=504|response_code=200' || true

step "kubectl label namespace shop sluice.dev/dataplane-mode- (remove the label)"
sed -i 's/metadata: {name: shop, labels: {sluice.dev\/dataplane-mode: ambient}}/metadata: {name: shop}/' \
  "$work/config/mesh.yaml"
eventually 20 grep -q "pod shop/server unenrolled" "$run/node-b-agent.log"
grep -h "unenrolled" "$run"/node-*-agent.log | sed 's/^/  /'
b=$(entries node-b)
curl_as shop/client http://198.18.2.10:8080/index.html
echo "  node-b ztunnel access log: $(($(entries node-b) - b)) new entries: plain TCP again"

step "demo complete"
