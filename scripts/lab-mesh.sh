# Sourced by scripts/demo.sh and tests/lab/{mesh,waypoint}_test.sh: small helpers around a lab
# that `sluicectl lab up` built (it starts the agents, ztunnels and containers itself), and the
# mesh YAML of the pods they share. Expects: sluicectl (the binary) and lab (the
# --state-dir/--name options).

LAB_HTTP_APP=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../tests/lab/apps/http_app.py")

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

# Mesh YAML (the lab runs a container's command and args in its pod: there are no images).
# lab_app_pod NAMESPACE NAME NODE IP UID VERSION [ENV] [LABELS]: a pod serving
# tests/lab/apps/http_app.py on port 8080 that answers as VERSION; its app label and service
# account are NAME up to the first '-'. ENV and LABELS are extra YAML flow entries.
lab_app_pod() {
  cat <<YAML
---
apiVersion: v1
kind: Pod
metadata: {name: $2, namespace: $1, uid: $5, labels: {app: ${2%%-*}, version: $6${8:+, $8}}}
spec:
  nodeName: $3
  serviceAccountName: ${2%%-*}
  containers:
    - name: app
      command: [python3, $LAB_HTTP_APP, --port, "8080"]
      env: [{name: VERSION, value: $6}${7:+, $7}]
      ports: [{containerPort: 8080}]
status: {phase: Running, podIP: $4}
YAML
}

# lab_waypoint NAMESPACE NODE IP UID: the namespace's waypoint, a Gateway of class
# sluice-waypoint, and its pod (not enrolled), as Istio runs a waypoint Deployment.
lab_waypoint() {
  cat <<YAML
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: $1}
spec:
  gatewayClassName: sluice-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: v1
kind: Pod
metadata:
  name: waypoint-0
  namespace: $1
  uid: $4
  labels: {gateway.networking.k8s.io/gateway-name: waypoint, sluice.dev/dataplane-mode: none}
spec:
  nodeName: $2
  serviceAccountName: waypoint
  containers:
    - name: waypoint
      command: [sluice-waypoint, --name, waypoint, --namespace, $1]
      ports: [{containerPort: 15008}]
status: {phase: Running, podIP: $3}
YAML
}
