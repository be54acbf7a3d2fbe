#!/usr/bin/env bash
# The waypoint end to end in the local lab: an enrolled client pod's unchanged curl to a
# service VIP is captured by its ztunnel, sent over HBONE to the namespace's waypoint (a pod
# running sluice-waypoint, bound by the Service's sluice.dev/use-waypoint label and a Gateway of
# class sluice-waypoint), routed there with Istio's own VirtualService / DestinationRule /
# AuthorizationPolicy YAML, and forwarded over HBONE to an endpoint pod.
# Checks: the issue's 90/10 split over 2,000 requests within statistical bounds; a failing
# endpoint retried until 200; perTryTimeout cutting a slow try, the retry answering; the 5 s
# route timeout giving 504 with flag UT (access log and istio_requests_total); attempts: 0
# passing the 503 through; abort and delay faults; outlier ejection and return; an L7 DENY
# giving 403; 100 MiB down and up unchanged; HTTP/2 (curl, h2load) to an HTTP/1.1 app; gRPC
# (a real grpcio client and server: unary, server and client streaming, a status with details,
# a 20 MB message, an L7 deny as PERMISSION_DENIED) over HTTP/2 to the app.
# Usage: tests/lab/waypoint_test.sh BUILD_DIR. Needs root; skips (77) otherwise, fails under CI.
set -euo pipefail

build=${1:-build}
sluicectl=$build/cli/sluicectl
if [[ $(id -u) -ne 0 ]]; then
  [[ ${CI:-} == true ]] && { echo "FAIL: the waypoint lab needs root (CI=true)"; exit 1; }
  echo "SKIP: the waypoint lab needs root"; exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
grpc_app=$here/apps/grpc_app.py  # runs with Debian's /usr/bin/python3 (python3-grpcio)
grpc_client=$here/apps/grpc_client.py

work=$(mktemp -d /tmp/sluice-waypoint-test.XXXXXX)
checks=0 failures=0
lab=(--state-dir "$work/state" --name "wp-$$")
run=
cleanup() {
  if ((failures > 0)) && [[ -n $run ]]; then
    mkdir -p /tmp/sluice-waypoint-test-logs && cp "$run"/*.log /tmp/sluice-waypoint-test-logs/ 2>/dev/null
  fi
  "$sluicectl" lab down "${lab[@]}" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
pass() { echo "PASS: $*"; checks=$((checks + 1)); }
fail() { echo "FAIL: $*"; checks=$((checks + 1)); failures=$((failures + 1)); }
# shellcheck source=scripts/lab-mesh.sh
source "$here/../../scripts/lab-mesh.sh"

# app_pod NAME NODE IP VERSION [ENV] [LABELS]: an http_app pod in shop, its uid from its IP.
app_pod() { lab_app_pod shop "$1" "$2" "$3" "6e000000-0000-4000-8000-0000000000${3##*.}" "${@:4}"; }

mkdir -p "$work/config"
{
  cat <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {sluice.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, uid: 6e000000-0000-4000-8000-000000000001, labels: {app: client}}
spec: {nodeName: node-a, serviceAccountName: client}
status: {phase: Running, podIP: 198.18.1.10}
YAML
  lab_waypoint shop node-a 198.18.1.50 6e000000-0000-4000-8000-000000000050
  app_pod reviews-v1 node-b 198.18.2.11 v1
  app_pod reviews-v2 node-a 198.18.1.12 v2
  app_pod ratings-good node-b 198.18.2.21 v1 "" "health: good"
  app_pod ratings-bad node-a 198.18.1.22 v1 "{name: FAIL_ALL, value: \"1\"}" "health: bad"
  for pod in "echo-a node-b 198.18.2.41" "echo-b node-a 198.18.1.42"; do
    read -r name node ip <<<"$pod"
    cat <<YAML
---
apiVersion: v1
kind: Pod
metadata: {name: $name, namespace: shop, uid: 6e000000-0000-4000-8000-0000000000${ip##*.}, labels: {app: echo}}
spec:
  nodeName: $node
  serviceAccountName: echo
  containers:
    - name: app
      command: [$grpc_app, --port, "9090"]
      env: [{name: VERSION, value: v1}]
      ports: [{containerPort: 9090}]
status: {phase: Running, podIP: $ip}
YAML
  done
  cat <<'YAML'
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop, labels: {sluice.dev/use-waypoint: waypoint}}
spec:
  clusterIP: 198.19.0.20
  selector: {app: reviews}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: shop, labels: {sluice.dev/use-waypoint: waypoint}}
spec:
  clusterIP: 198.19.0.30
  selector: {app: ratings}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: shop}
spec:
  hosts: [ratings.shop.svc.cluster.local]
  http:
    - name: abort
      match: [{headers: {x-fault: {exact: abort}}}]
      fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
      route: [{destination: {host: ratings}}]
    - name: delay
      match: [{headers: {x-fault: {exact: delay}}}]
      fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
      route: [{destination: {host: ratings, subset: good}}]
    - name: no-retries
      route: [{destination: {host: ratings}}]
      retries: {attempts: 0}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: shop}
spec:
  host: ratings
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 2s, maxEjectionPercent: 100}
  subsets:
    - {name: good, labels: {health: good}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-admin, namespace: shop}
spec:
  targetRefs: [{kind: Service, group: "", name: ratings}]
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: shop, labels: {sluice.dev/use-waypoint: waypoint}}
spec:
  clusterIP: 198.19.0.40
  selector: {app: echo}
  ports: [{name: grpc, port: 9090, targetPort: 9090}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: echo-no-fail, namespace: shop}
spec:
  targetRefs: [{kind: Service, group: "", name: echo}]
  action: DENY
  rules: [{to: [{operation: {paths: ["/sluice.test.Echo/Fail"], methods: [POST]}}], when: [{key: "request.headers[x-deny]", values: ["yes"]}]}]
YAML
  echo "---"
  cat "$here/../../examples/waypoint/reviews-routes.yaml"  # the issue's VirtualService, unchanged
} >"$work/config/mesh.yaml"

if "$sluicectl" lab up --config "$work/config" "${lab[@]}" --ztunnel-arg --no-admin >"$work/up.out" 2>&1; then
  pass "lab up: two nodes, a waypoint pod and four application pods"
else
  fail "lab up: $(cat "$work/up.out")"; exit 1
fi
run=$(lab_field runDir)
waypoint_log=$run/shop_waypoint-0_waypoint.log
enrolled() { grep -q "pod shop/client enrolled" "$run/node-a-agent.log" && grep -q "pod shop/reviews-v1 enrolled" "$run/node-b-agent.log"; }
eventually 20 enrolled || { fail "pods not enrolled"; exit 1; }

logged() { local n; n=$(grep -c '"message":"request complete"' "$waypoint_log" 2>/dev/null); echo "${n:-0}"; }
# Each client command notes how many requests the waypoint had logged (in a file: callers run it
# in command substitutions, whose variables do not come back).
client() { logged >"$work/logged.before"; "$sluicectl" lab exec "${lab[@]}" shop/client -- "$@"; }
get() { client curl -s --noproxy '*' -m 20 "$@"; }
logged_since_client() { (($(logged) > $(cat "$work/logged.before"))); }
# last_request FIELD: that field of the access-log line of the client's last request. The waypoint
# writes the line just after the response, so the client can be faster: wait for it (5 s).
last_request() {
  eventually 5 logged_since_client || true
  grep '"message":"request complete"' "$waypoint_log" | tail -1 | python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"
}
waypoint_metrics() { "$sluicectl" lab exec "${lab[@]}" shop/waypoint-0 -- curl -s -m 5 http://127.0.0.1:15020/metrics; }
# cluster_stat NAME SERVICE: Envoy's per-cluster statistic NAME summed over SERVICE's clusters.
cluster_stat() {
  waypoint_metrics | awk -v name="$1" -v service="|$2." \
    '$1 ~ "^" name "[{]" && index($1, service) { sum += $2 } END { print sum + 0 }'
}

# --- through ztunnel and the waypoint -----------------------------------------------------
reached() { [[ $(get http://198.19.0.20/) == v* ]]; }
eventually 20 reached && [[ $(last_request authority) == 198.19.0.20:80 ]] &&
  pass "client -> reviews VIP went through the waypoint (access log: authority 198.19.0.20:80, from $(last_request src_identity))" ||
  fail "no request reached the waypoint: $(get -v http://198.19.0.20/ 2>&1 | tail -3)"

# 90/10 over 2,000 requests (one curl, keep-alive): v2 ~ Binomial(2000, 0.1), mean 200, sd 13.4.
urls=$(printf 'http://198.19.0.20/ %.0s' $(seq 2000))
# shellcheck disable=SC2086
get $urls >"$work/split.out"
v1=$(grep -c '^v1 ' "$work/split.out" || true) v2=$(grep -c '^v2 ' "$work/split.out" || true)
if ((v1 + v2 == 2000 && v2 >= 146 && v2 <= 254)); then
  pass "90/10 split: v1 $v1, v2 $v2 of 2000 (v2 within mean 200 +- 4 sd)"
else
  fail "90/10 split: v1 $v1, v2 $v2 of 2000"
fi

# A v1 (or v2) endpoint that fails twice, then succeeds: retried (5xx), the client sees 200.
out=$(get -w ' %{http_code}' http://198.19.0.20/fail/twice/2)
if [[ $out == *"after 2 failures"*" 200" && $(last_request attempts) == 3 ]]; then
  pass "retries: two 503s then 200; the client saw 200 after $(last_request attempts) attempts"
else
  fail "retries: got '$out', attempts $(last_request attempts)"
fi

# perTryTimeout (2s) cuts a slow first try (2.5 s); the retry answers at once.
start=$SECONDS
out=$(get -w ' %{http_code}' http://198.19.0.20/slowonce/a/2500)
if [[ $out == *"fast"*" 200" && $(last_request attempts) == 2 ]] && ((SECONDS - start < 5)); then
  pass "perTryTimeout: the 2.5 s try was cut at 2 s and the retry answered 200 ($((SECONDS - start)) s)"
else
  fail "perTryTimeout: got '$out', attempts $(last_request attempts)"
fi
# Those two requests are all that failed so far: 3 retries, and both retried requests succeeded.
retries=$(cluster_stat envoy_cluster_upstream_rq_retry reviews)
successes=$(cluster_stat envoy_cluster_upstream_rq_retry_success reviews)
if ((retries == 3 && successes == 2)); then
  pass "envoy_cluster_upstream_rq_retry of reviews is 3, ..._retry_success 2"
else
  fail "reviews' retry statistics: $retries retries, $successes successes (want 3 and 2)"
fi

# Every try slower than perTryTimeout: the route's 5 s total ends it with 504 and flag UT.
start=$SECONDS
code=$(get -o /dev/null -w '%{http_code}' http://198.19.0.20/slow/2500)
took=$((SECONDS - start))
if [[ $code == 504 && $(last_request response_flags) == *UT* ]] && ((took >= 4 && took <= 7)); then
  pass "route timeout: 504 after ${took} s with response flag $(last_request response_flags)"
else
  fail "route timeout: $code after ${took} s, flags $(last_request response_flags)"
fi
if waypoint_metrics | grep -E '^istio_requests_total\{' | grep 'response_code="504"' |
  grep 'response_flags="UT"' | grep -q 'reporter="waypoint"'; then
  pass "istio_requests_total{reporter=\"waypoint\",response_code=\"504\",response_flags=\"UT\"} is counted"
else
  fail "no 504/UT series in the waypoint's metrics"
fi

# --- ratings: no retries, faults, outlier detection, L7 authorization ---------------------
# Round robin over a good and an always-503 endpoint, attempts 0: the 503s reach the client
# until outlier detection (2 consecutive 5xx) ejects the bad one for 2 s.
codes=$(client bash -c 'for i in $(seq 20); do curl -s -m 5 -o /dev/null -w "%{http_code} " http://198.19.0.30/; done')
read -ra list <<<"$codes"
bad=$(tr ' ' '\n' <<<"$codes" | grep -c 503 || true)
tail_ok=1
for code in "${list[@]:10}"; do [[ $code == 200 ]] || tail_ok=0; done
if ((bad >= 1 && bad <= 3 && tail_ok)); then
  pass "attempts: 0 passes the 503 through ($bad of 20), and outlier detection ejected the failing endpoint (last 10 all 200)"
else
  fail "no-retry/outlier: codes $codes"
fi
ejections=$(cluster_stat envoy_cluster_outlier_detection_ejections_enforced_total ratings)
((ejections >= 1)) && pass "envoy_cluster_outlier_detection_ejections_enforced_total of ratings: $ejections" ||
  fail "no ejection counted for ratings"
returned() { [[ $(get -o /dev/null -w '%{http_code}' http://198.19.0.30/) == 503 ]]; }
if eventually 10 returned; then
  pass "the ejected endpoint returned after its base ejection time (a 503 again)"
else
  fail "the ejected endpoint never came back"
fi

code=$(get -o /dev/null -w '%{http_code}' -H 'x-fault: abort' http://198.19.0.30/)
[[ $code == 418 && $(last_request response_flags) == *FI* ]] &&
  pass "abort fault: 418 with flag FI" || fail "abort fault: $code, flags $(last_request response_flags)"
ms=$(get -o /dev/null -w '%{time_total}' -H 'x-fault: delay' http://198.19.0.30/ | python3 -c 'import sys; print(int(float(sys.stdin.read()) * 1000))')
((ms >= 300)) && [[ $(last_request response_flags) == *DI* && $(last_request response_code) == 200 ]] &&
  pass "delay fault: answered 200 after $ms ms with flag DI" ||
  fail "delay fault: $ms ms, flags $(last_request response_flags)"

code=$(get -o /dev/null -w '%{http_code}' http://198.19.0.30/admin/users)
[[ $code == 403 && $(last_request error) == *ratings-admin* ]] &&
  pass "L7 AuthorizationPolicy DENY /admin*: 403 ($(last_request error))" || fail "deny: $code"
code=$(get -o /dev/null -w '%{http_code}' -H 'x-fault: delay' http://198.19.0.30/other)
[[ $code == 404 ]] && pass "paths the DENY rule does not name still pass (404 from the app)" ||
  fail "non-admin path: $code"

# --- 100 MiB both ways, unchanged -----------------------------------------------------------
size=$((100 * 1024 * 1024))
expected=$(python3 -c "import hashlib; print(hashlib.sha256(b'x' * $size).hexdigest())")
# The rate is shown (sha256 on the same cores included), not asserted: speed is bench/'s.
mib_per_s() { awk -v bytes="$size" -v from="$1" -v to="$2" 'BEGIN { printf "%.0f MiB/s", bytes / 1048576 / ((to - from) / 1e9) }'; }
started=$(date +%s%N)
got=$(get http://198.19.0.20/bytes/$size | sha256sum | cut -d' ' -f1)
rate=$(mib_per_s "$started" "$(date +%s%N)")
[[ $got == "$expected" ]] && pass "100 MiB download through the waypoint unchanged (sha256; $rate)" ||
  fail "100 MiB download: sha256 $got"
head -c $size /dev/urandom >"$work/upload.bin"
sum=$(sha256sum "$work/upload.bin" | cut -d' ' -f1)
started=$(date +%s%N)
out=$(get --data-binary @"$work/upload.bin" -H 'content-type: application/octet-stream' http://198.19.0.20/sha256)
rate=$(mib_per_s "$started" "$(date +%s%N)")
[[ $out == "$sum $size" ]] && pass "100 MiB upload through the waypoint unchanged (sha256; $rate)" ||
  fail "100 MiB upload: app saw '$out', sent $sum"

# --- HTTP/2 and gRPC -----------------------------------------------------------------------
out=$(get --http2-prior-knowledge -w ' %{http_version} %{http_code}' http://198.19.0.20/ | tr -d '\n')
[[ $out == v*" 2 200" && $(last_request protocol) == HTTP/2 ]] &&
  pass "HTTP/2 (prior knowledge) to an HTTP/1.1 app: '$out', access log protocol $(last_request protocol)" ||
  fail "HTTP/2 request: '$out', protocol $(last_request protocol)"
client h2load -n 2000 -c 4 -m 16 http://198.19.0.20/ >"$work/h2load.out" 2>&1 || true
if grep -q '2000 succeeded' "$work/h2load.out" && grep -q 'status codes: 2000 2xx' "$work/h2load.out"; then
  pass "h2load: 2000 requests on 4 connections x 16 streams, all 2xx ($(grep -o 'finished in [^,]*, [0-9.]* req/s' "$work/h2load.out"))"
else
  fail "h2load: $(grep -E 'requests:|status codes:' "$work/h2load.out" | tr '\n' ' ')"
fi

grpc() { client "$grpc_client" 198.19.0.40:9090 "$@"; }
json_field() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
out=$(grpc Who --count 200)
if [[ $(json_field 'd["codes"].get("OK", 0)' <<<"$out") == 200 && $(json_field 'len(d["answers"])' <<<"$out") == 2 &&
  $(last_request protocol) == HTTP/2 ]]; then
  pass "gRPC unary: 200 calls OK on one channel, answered by both pods ($(json_field 'd["answers"]' <<<"$out"))"
else
  fail "gRPC unary: $out"
fi
out=$(grpc Count 1000)
[[ $(json_field 'd["code"] + " " + str(len(d["responses"])) + " " + d["responses"][-1]' <<<"$out") == "OK 1000 999" ]] &&
  pass "gRPC server streaming: 1000 messages in order" || fail "gRPC server streaming: ${out:0:300}"
out=$(grpc Sum 1 2 3 4 5 100)
[[ $(json_field 'd["code"] + " " + d["responses"][0]' <<<"$out") == "OK 115" ]] &&
  pass "gRPC client streaming: the sum of six messages (115)" || fail "gRPC client streaming: $out"
# Lock-step bidi: each message is sent only after the answer to the one before, so the request
# body is still open while every answer must come back.
out=$(grpc Chat alpha beta gamma delta --timeout 5)
[[ $(json_field 'd["code"] + " " + ",".join(d["responses"])' <<<"$out") == "OK ALPHA,BETA,GAMMA,DELTA" ]] &&
  pass "gRPC bidi streaming in lock-step: 4 messages, each answered before the next is sent" ||
  fail "gRPC bidi streaming: $out"
out=$(grpc Fail NOT_FOUND no such review)
[[ $(json_field 'd["code"] + "/" + d["details"]' <<<"$out") == "NOT_FOUND/no such review" ]] &&
  pass "gRPC status and details from the app's trailers reach the client (NOT_FOUND 'no such review')" ||
  fail "gRPC status: $out"
out=$(grpc Big 20000000)
expected=$(python3 -c "import hashlib; print(hashlib.sha256((bytes(range(251)) * (20000000 // 251 + 1))[:20000000]).hexdigest())")
[[ $(json_field 'd["code"] + " " + str(d["bytes"]) + " " + d["sha256"]' <<<"$out") == "OK 20000000 $expected" ]] &&
  pass "gRPC 20 MB message unchanged (sha256)" || fail "gRPC 20 MB message: ${out:0:300}"
out=$(grpc Fail NOT_FOUND x --metadata x-deny=yes)
[[ $(json_field 'd["code"]' <<<"$out") == PERMISSION_DENIED && $(last_request response_code) == 403 ]] &&
  pass "gRPC L7 deny: PERMISSION_DENIED to the client, 403 in the access log ($(last_request error))" ||
  fail "gRPC deny: $out"
if waypoint_metrics | grep -E '^istio_requests_total\{' | grep 'request_protocol="grpc"' | grep -q 'destination_service_name="echo"'; then
  pass "istio_requests_total counts the gRPC calls with request_protocol=\"grpc\""
else
  fail "no request_protocol=\"grpc\" series for echo"
fi

echo "$((checks - failures)) passed, $failures failed"
((failures == 0 && checks > 0))
