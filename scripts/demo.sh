#!/usr/bin/env bash
# The local mesh demo: two ztunnels on loopback act as two nodes; a client's bytes cross an
# mTLS HBONE tunnel; the peer identities and Istio metrics are printed. Sets up a fresh
# Debian 12 machine first when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -eq 0 ]]; then scripts/install-deps.sh; fi
build_dir=${BUILD_DIR:-build}
echo "==> building sluice-ztunnel and sluicectl"
cmake -S . -B "$build_dir" -G Ninja >/dev/null
ninja -C "$build_dir" sluice-ztunnel sluicectl >/dev/null
ztunnel=$build_dir/ztunnel/sluice-ztunnel
sluicectl=$build_dir/cli/sluicectl

work=$(mktemp -d /tmp/sluice-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Workload addresses on loopback; a run-unique third octet keeps demos from colliding.
net="127.$((RANDOM % 200 + 20)).$((RANDOM % 250))"
client_ip=$net.2 server_ip=$net.3
base=$((20000 + RANDOM % 20000))
mkdir -p "$work/config"
cat >"$work/config/mesh.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels: {sluice.dev/dataplane-mode: ambient}
---
apiVersion: v1
kind: Pod
metadata: {name: sleep, namespace: demo, labels: {app: sleep}}
spec: {nodeName: node-a, serviceAccountName: sleep}
status: {phase: Running, podIP: $client_ip}
---
apiVersion: v1
kind: Pod
metadata: {name: httpbin-5f7d8c9b6-k2x4q, namespace: demo, labels: {app: httpbin, version: v1, pod-template-hash: 5f7d8c9b6}}
spec: {nodeName: node-b, serviceAccountName: httpbin}
status: {phase: Running, podIP: $server_ip}
---
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: demo}
spec:
  clusterIP: 198.19.0.10
  selector: {app: httpbin}
  ports: [{name: http, port: 80, targetPort: 8000}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: demo}
spec:
  mtls: {mode: STRICT}
YAML

echo "==> sluicectl validate"
"$sluicectl" validate "$work/config"

echo "==> app: a static file server on httpbin's address $server_ip:8000"
mkdir -p "$work/www"
echo "hello from httpbin over HBONE" >"$work/www/index.html"
head -c 8388608 /dev/urandom >"$work/www/blob"
python3 -m http.server --bind "$server_ip" --directory "$work/www" 8000 >/dev/null 2>&1 &
pids+=($!)

echo "==> node-b ztunnel (serves httpbin; HBONE on $server_ip:15008)"
"$ztunnel" --node node-b --config-dir "$work/config" --ca-dir "$work/ca" \
  --admin "127.0.0.1:$((base + 0))" --metrics "127.0.0.1:$((base + 20))" \
  --readiness "127.0.0.1:$((base + 21))" --access-log "$work/node-b.log" >"$work/node-b.out" 2>&1 &
pids+=($!)
echo "==> node-a ztunnel (serves sleep; outbound listener 127.0.0.1:$((base + 1)) -> service 198.19.0.10:80)"
"$ztunnel" --node node-a --config-dir "$work/config" --ca-dir "$work/ca" \
  --admin "127.0.0.1:$((base + 100))" --metrics "127.0.0.1:$((base + 120))" \
  --readiness "127.0.0.1:$((base + 121))" --access-log "$work/node-a.log" \
  --outbound "demo/sleep=127.0.0.1:$((base + 1)),198.19.0.10:80" >"$work/node-a.out" 2>&1 &
pids+=($!)

# Start-up: poll readiness with a deadline (the processes have no other signal to wait on).
for port in $((base + 21)) $((base + 121)); do
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/healthz/ready" >/dev/null && break
    sleep 0.05
  done
  curl -fs "http://127.0.0.1:$port/healthz/ready" >/dev/null || {
    echo "ztunnel on readiness port $port did not become ready" >&2
    cat "$work"/node-*.out >&2
    exit 1
  }
done
for _ in $(seq 100); do curl -fs "http://$server_ip:8000/" >/dev/null && break; sleep 0.05; done

echo
echo "==> curl through the tunnel (sleep -> httpbin service)"
curl -fsS "http://127.0.0.1:$((base + 1))/index.html"
got=$(curl -fsS "http://127.0.0.1:$((base + 1))/blob" | sha256sum | cut -d' ' -f1)
want=$(sha256sum "$work/www/blob" | cut -d' ' -f1)
[[ $got == "$want" ]] && echo "8 MiB download: sha256 matches ($got)" || {
  echo "8 MiB download corrupted" >&2
  exit 1
}

echo
echo "==> access log (node-a, outbound): who talked to whom"
python3 - "$work/node-a.log" "$work/node-b.log" <<'PY'
import json, sys
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        print(f"  {r['direction']:8} {r['src_identity'] or r['src']:45} -> {r['dst_identity'] or r['dst']:45} "
              f"sent={r['bytes_sent']} received={r['bytes_received']} {r['error'] or 'ok'}")
PY

echo
echo "==> Istio metrics (node-b, reporter=destination)"
curl -fs "http://127.0.0.1:$((base + 20))/metrics" | python3 -c '
import re, sys
for line in sys.stdin:
    m = re.match(r"(istio_tcp_[a-z_]+)[{](.*)[}] (\S+)", line)
    if not m: continue
    labels = dict(re.findall(r"([a-z_]+)=.([^\x22]*).", m.group(2)))
    src, dst, policy = (labels[k] for k in ("source_principal", "destination_principal", "connection_security_policy"))
    print(f"  {m.group(1):38} {src} -> {dst} [{policy}] = {m.group(3)}")'
echo
echo "==> STRICT PeerAuthentication: plaintext to httpbin's inbound port 15006 is refused"
if curl -fsS -m 3 "http://$server_ip:15006/" >/dev/null 2>&1; then
  echo "plaintext was accepted: STRICT not enforced" >&2
  exit 1
fi
grep -o '"error":"plaintext refused[^"]*"' "$work/node-b.log" | head -1

echo
echo "==> config_dump (node-b admin): served workloads and certificates"
curl -fs "http://127.0.0.1:$base/config_dump" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for w in d["workloads"]: print("  workload", w["namespace"] + "/" + w["name"], w["identity"], w["ips"])
for c in d["certificates"]: print("  certificate", c["identity"], "valid until", c["not_after"])'
echo
echo "demo complete"
