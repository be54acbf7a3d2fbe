#!/usr/bin/env bash
# `sluicectl lab` end to end, as a person would use it: up from a YAML directory (network, the
# nodes' agents and ztunnels, a pod's container), status, exec (curl from a pod on the other
# node), restart of a container, down (everything gone: processes, run directory, BPF
# filesystem), down again; and up --no-data-plane with a server started by exec.
# Usage: tests/lab/lab_cli_test.sh [path/to/sluicectl]
# Needs root; skips (exit 77, ctest's SKIP_RETURN_CODE) otherwise, but fails when CI=true.
set -euo pipefail

sluicectl=${1:-build/cli/sluicectl}
if [[ $(id -u) -ne 0 ]]; then
  [[ ${CI:-} == true ]] && { echo "FAIL: the lab needs root (CI=true)"; exit 1; }
  echo "SKIP: the lab needs root"; exit 77
fi

sluicectl=$(realpath "$sluicectl")
work=$(mktemp -d /tmp/sluice-lab-cli.XXXXXX)
name=cli-$$
# A relative state directory, as a person types it: up and down must resolve it alike.
cd "$work"
lab=(--state-dir state --name "$name")
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
  "$sluicectl" lab down "${lab[@]}" >/dev/null 2>&1 || true
  "$sluicectl" lab down --state-dir state --name "$name-bare" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
# alive PID: running and not a zombie waiting for its parent to reap it.
alive() { [[ -r /proc/$1/stat ]] && [[ $(sed 's/.*) //' "/proc/$1/stat" | cut -c1) != Z ]]; }

mkdir -p "$work/config" "$work/www"
pods() {
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop}
spec: {nodeName: node-a}
status: {phase: Running, podIPs: [{ip: 198.18.1.10}, {ip: "fd00:5::1:10"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: shop}
spec:
  nodeName: node-b
  containers:
    - name: web
      command: [python3, -m, http.server, --bind, "::", --directory, $work/www]
      args: ["8080"]
      ports: [{containerPort: 8080}]
status: {phase: Running, podIPs: [{ip: 198.18.2.10}, {ip: "fd00:5::2:10"}]}
YAML
}
pods >"$work/config/mesh.yaml"

"$sluicectl" lab up --config "$work/config" "${lab[@]}" >"$work/up.out" 2>&1 || fail "up: $(cat "$work/up.out")"
run_id=$(sed -n 's/^lab .* (run \([0-9a-z]*\)).*/\1/p' "$work/up.out")
[[ -n $run_id ]] || fail "up printed no run id: $(cat "$work/up.out")"
"$sluicectl" lab status "${lab[@]}" >"$work/status.out" || fail "status: $(cat "$work/status.out")"
# 15 network objects, the run directory, 2 agents, 2 ztunnels, 1 container.
grep -q "all 21 objects present" "$work/status.out" || fail "status: $(cat "$work/status.out")"
grep -q "present  process web" "$work/status.out" || fail "status lists no web container: $(cat "$work/status.out")"
run_dir=$("$sluicectl" lab status "${lab[@]}" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["runDir"])')
grep -q " $run_dir/bpf bpf " /proc/mounts || fail "no private BPF filesystem at $run_dir/bpf"

# up returned once the container listened: the client on the other node reaches it at once.
get() { "$sluicectl" lab exec "${lab[@]}" client -- curl --noproxy '*' -gsS -m 5 -o /dev/null -w '%{http_code}' "$1"; }
[[ $(get http://198.18.2.10:8080/) == 200 ]] || fail "IPv4 across nodes to the pod's container"
[[ $(get 'http://[fd00:5::2:10]:8080/') == 200 ]] || fail "IPv6 across nodes to the pod's container"

# restart: the container comes back under a new pid, with the same command line.
old_pid=$(sed -n 's/.*process web (pid \([0-9]*\)).*/\1/p' "$work/status.out")
"$sluicectl" lab restart "${lab[@]}" shop/server web >"$work/restart.out" || fail "restart: $(cat "$work/restart.out")"
new_pid=$(sed -n 's/.*: pid \([0-9]*\)$/\1/p' "$work/restart.out")
[[ -n $new_pid && $new_pid != "$old_pid" ]] || fail "restart kept pid $old_pid: $(cat "$work/restart.out")"
! alive "$old_pid" || fail "the old container ($old_pid) still runs"
ok=
for _ in $(seq 100); do  # the restarted server needs a moment to listen (10 s deadline)
  [[ $(get http://198.18.2.10:8080/ 2>/dev/null) == 200 ]] && { ok=1; break; }
  sleep 0.1
done
[[ -n $ok ]] || fail "the restarted container never answered"
"$sluicectl" lab restart "${lab[@]}" shop/server nosuch >/dev/null 2>"$work/restart.err" &&
  fail "restart of an unknown process succeeded"
grep -q 'has no process "nosuch"' "$work/restart.err" || fail "unclear error: $(cat "$work/restart.err")"

pids=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$work/status.out")
"$sluicectl" lab down "${lab[@]}" >/dev/null || fail "down"
for pid in $pids $new_pid; do
  ! alive "$pid" || fail "process $pid of the lab outlived down"
done
[[ ! -e $run_dir ]] || fail "run directory $run_dir left"
! grep -q " $run_dir/bpf " /proc/mounts || fail "BPF filesystem $run_dir/bpf still mounted"
if ip netns list | grep -q "sluice-$run_id-"; then fail "netns left: $(ip netns list)"; fi
if ip -o link show | grep -q "sluice$run_id"; then fail "links left"; fi
if grep -q cgroup2 /proc/mounts; then
  cg=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
  [[ ! -e $cg/sluice-$run_id ]] || fail "cgroup $cg/sluice-$run_id left"
fi
"$sluicectl" lab down "${lab[@]}" >/dev/null || fail "second down"

# --no-data-plane: only the network; a server started with exec is killed by down.
bare=(--state-dir state --name "$name-bare")
"$sluicectl" lab up --config "$work/config" "${bare[@]}" --no-data-plane >"$work/up-bare.out" 2>&1 ||
  fail "up --no-data-plane: $(cat "$work/up-bare.out")"
"$sluicectl" lab status "${bare[@]}" | grep -q "all 15 objects present" || fail "bare lab status"
"$sluicectl" lab exec "${bare[@]}" shop/server -- python3 -m http.server --bind :: \
  --directory "$work/www" 8080 >"$work/server.log" 2>&1 &
server_pid=$!
disown "$server_pid"  # down kills it; no job report from bash
ok=
for _ in $(seq 100); do  # poll for the listener with a deadline (10 s)
  if "$sluicectl" lab exec "${bare[@]}" client -- curl --noproxy '*' -gsS -m 2 -o /dev/null \
      http://198.18.2.10:8080/ 2>/dev/null; then ok=1; break; fi
  sleep 0.1
done
[[ -n $ok ]] || fail "client never reached the exec'd server: $(cat "$work/server.log")"
"$sluicectl" lab down "${bare[@]}" >/dev/null || fail "down of the bare lab"
! alive "$server_pid" || fail "the exec'd server outlived down"
server_pid=
# Two files given: the data plane cannot watch them, and says so.
"$sluicectl" lab up --config "$work/config" --config "$work/config" "${bare[@]}" >/dev/null 2>"$work/err" &&
  fail "up with two --config and a data plane succeeded"
grep -q "one configuration directory" "$work/err" || fail "unclear error: $(cat "$work/err")"
echo "PASS: lab up (network + data plane + containers), status, exec across nodes (IPv4, IPv6), restart, down, down again; --no-data-plane"
