# Sourced by scripts/demo.sh and tests/lab/mesh_test.sh: small helpers around a lab that
# `sluicectl lab up` built (it starts the agents, ztunnels and containers itself). Expects:
# sluicectl (the binary) and lab (the --state-dir/--name options).

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

# lab_field FIELD: a top-level field of the lab's state (runDir: its logs, access logs, pins).
lab_field() {
  "$sluicectl" lab status "${lab[@]}" --json | python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"
}
