# Sourced by scripts/demo.sh and tests/lab/mesh_test.sh: runs the data plane in a lab that
# `sluicectl lab up` built. Expects: sluicectl, agent, ztunnel (binaries), work (a directory
# with config/ and a private bpffs mounted at bpf/), lab (the --state-dir/--name options),
# state (the lab's state file). Daemons are disowned: `sluicectl lab down` kills them.

# Waits for a condition that has no event a script can wait on (start-up, a log line):
# eventually SECONDS COMMAND...
eventually() {
  local until=$((SECONDS + $1))
  shift
  while ((SECONDS < until)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# lab_node_field NODE FIELD: a field of a node in the lab's state (cgroup, ipv4, ...).
lab_node_field() {
  "$sluicectl" lab status "${lab[@]}" --json | python3 -c "
import json, sys; print([n['$2'] for n in json.load(sys.stdin)['nodes'] if n['name'] == '$1'][0])"
}

# start_agent NODE [AGENT OPTION...]: the node agent, in the node's netns and cgroup, capture
# attached at the node's cgroup. Log: $work/NODE-agent.log; pid: $work/NODE-agent.pid.
start_agent() {
  local node=$1
  shift
  mkdir -p "$work/bpf/$node"
  "$sluicectl" lab exec "${lab[@]}" --node "$node" -- "$agent" run --node "$node" \
    --config-dir "$work/config" --cgroup "$(lab_node_field "$node" cgroup)" \
    --pin-dir "$work/bpf/$node" --socket "$work/$node.sock" --lab-state "$state" "$@" \
    >"$work/$node-agent.log" 2>&1 &
  disown
  echo $! >"$work/$node-agent.pid" # lab exec execs the daemon: this is its pid
}

# start_ztunnel NODE [ZTUNNEL OPTION...]: ztunnel in in-pod mode for NODE's agent. Access log:
# $work/NODE.log; output: $work/NODE-ztunnel.out (appended); pid: $work/NODE-ztunnel.pid.
start_ztunnel() {
  local node=$1
  shift
  "$sluicectl" lab exec "${lab[@]}" --node "$node" -- "$ztunnel" --node "$node" \
    --config-dir "$work/config" --ca-dir "$work/ca" --inpod-socket "$work/$node.sock" \
    --bpf-pin-dir "$work/bpf/$node" --workers 1 --access-log "$work/$node.log" "$@" \
    >>"$work/$node-ztunnel.out" 2>&1 &
  disown
  echo $! >"$work/$node-ztunnel.pid"
}
