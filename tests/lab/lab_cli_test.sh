#!/usr/bin/env bash
# `sluicectl lab` end to end, as a person would use it: up from a YAML directory, status,
# exec (an HTTP server in one pod, curl from a pod on the other node), down, down again.
# Usage: tests/lab/lab_cli_test.sh [path/to/sluicectl]
# Needs root; skips (exit 77, ctest's SKIP_RETURN_CODE) otherwise, but fails when CI=true.
set -euo pipefail

sluicectl=${1:-build/cli/sluicectl}
if [[ $(id -u) -ne 0 ]]; then
  [[ ${CI:-} == true ]] && { echo "FAIL: the lab needs root (CI=true)"; exit 1; }
  echo "SKIP: the lab needs root"; exit 77
fi

work=$(mktemp -d /tmp/sluice-lab-cli.XXXXXX)
name=cli-$$
lab=(--state-dir "$work/state" --name "$name")
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
  "$sluicectl" lab down "${lab[@]}" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$work/config" "$work/www"
cat >"$work/config/mesh.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop}
spec: {nodeName: node-a}
status: {phase: Running, podIPs: [{ip: 198.18.1.10}, {ip: "fd00:5::1:10"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: shop}
spec: {nodeName: node-b}
status: {phase: Running, podIPs: [{ip: 198.18.2.10}, {ip: "fd00:5::2:10"}]}
YAML

"$sluicectl" lab up --config "$work/config" "${lab[@]}" >"$work/up.out" || fail "up: $(cat "$work/up.out")"
run_id=$(sed -n 's/^lab .* (run \([0-9a-z]*\)).*/\1/p' "$work/up.out")
[[ -n $run_id ]] || fail "up printed no run id: $(cat "$work/up.out")"
"$sluicectl" lab status "${lab[@]}" >"$work/status.out" || fail "status: $(cat "$work/status.out")"
grep -q "all 15 objects present" "$work/status.out" || fail "status: $(cat "$work/status.out")"

# A server as shop/server (node-b), a client as shop/client (node-a).
"$sluicectl" lab exec "${lab[@]}" shop/server -- python3 -m http.server --bind :: \
  --directory "$work/www" 8080 >"$work/server.log" 2>&1 &
server_pid=$!
disown "$server_pid"  # down kills it; no job report from bash
ok=
for _ in $(seq 100); do  # poll for the listener with a deadline (10 s)
  if "$sluicectl" lab exec "${lab[@]}" client -- curl --noproxy '*' -gsS -m 2 -o /dev/null \
      http://198.18.2.10:8080/ 2>/dev/null; then ok=1; break; fi
  sleep 0.1
done
[[ -n $ok ]] || fail "client never reached the server: $(cat "$work/server.log")"
code=$("$sluicectl" lab exec "${lab[@]}" client -- curl --noproxy '*' -gsS -m 5 -o /dev/null \
  -w '%{http_code}' 'http://[fd00:5::2:10]:8080/')
[[ $code == 200 ]] || fail "IPv6 across nodes gave $code"

"$sluicectl" lab down "${lab[@]}" >/dev/null || fail "down"
# Alive and not a zombie waiting for this shell to reap it.
if [[ -r /proc/$server_pid/stat ]] && [[ $(sed 's/.*) //' "/proc/$server_pid/stat" | cut -c1) != Z ]]; then
  fail "the pod's server outlived down"
fi
server_pid=
if ip netns list | grep -q "sluice-$run_id-"; then fail "netns left: $(ip netns list)"; fi
if ip -o link show | grep -q "sluice$run_id"; then fail "links left"; fi
if grep -q cgroup2 /proc/mounts; then
  cg=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
  [[ ! -e $cg/sluice-$run_id ]] || fail "cgroup $cg/sluice-$run_id left"
fi
"$sluicectl" lab down "${lab[@]}" >/dev/null || fail "second down"
echo "PASS: lab up, status, exec across nodes (IPv4, IPv6), down, down again"
