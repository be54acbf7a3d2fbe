# shellcheck shell=bash disable=SC2034  # variables here are used by the scripts that source it
# Shared fixture for the interop tests: sourced by run_node_interop.sh and openssl_tls_facts.sh.
#
# Starts one sluice-ztunnel serving pod demo/server on a fresh 127.x.y.3 address, issues client
# certificates with the openssl CLI (one from the ztunnel's own CA, one from a foreign CA), and
# tears everything down in an EXIT trap so a failing check never leaks a process or a temp dir.
#
# After fixture_start the caller has:
#   FIXTURE_DIR        temp dir (removed on exit)
#   POD_IP             the workload address; HBONE listens on POD_IP:HBONE_PORT
#   OTHER_IP           an address on the same /24 that is not a workload (for 400 checks)
#   HBONE_PORT         15008
#   ROOT_CERT          the ztunnel CA root (ca/root-cert.pem)
#   CLIENT_CERT/KEY    spiffe://cluster.local/ns/demo/sa/client, signed by ROOT_CERT
#   FOREIGN_ROOT       a self-made root the ztunnel does not trust
#   FOREIGN_CERT/KEY   same SPIFFE identity, signed by FOREIGN_ROOT
#   ZTUNNEL_LOG        the daemon's stdout+stderr

set -euo pipefail

readonly HBONE_PORT=15008
readonly TRUST_DOMAIN=cluster.local
readonly CLIENT_SAN="spiffe://${TRUST_DOMAIN}/ns/demo/sa/client"
readonly SERVER_SAN="spiffe://${TRUST_DOMAIN}/ns/demo/sa/server"
readonly READY_DEADLINE_SECONDS=20

FIXTURE_FAILURES=0
FIXTURE_CHECKS=0
ZTUNNEL_PID=""
FIXTURE_DIR=""

pass() {
  FIXTURE_CHECKS=$((FIXTURE_CHECKS + 1))
  echo "PASS: $*"
}

fail() {
  FIXTURE_CHECKS=$((FIXTURE_CHECKS + 1))
  FIXTURE_FAILURES=$((FIXTURE_FAILURES + 1))
  echo "FAIL: $*"
}

die() {
  echo "ERROR: $*" >&2
  exit 1
}

fixture_cleanup() {
  local rc=$?
  # A second signal must not cut the cleanup short and leak the daemon or the temp dir.
  trap '' INT TERM
  if [[ -n "$ZTUNNEL_PID" ]] && kill -0 "$ZTUNNEL_PID" 2>/dev/null; then
    kill -TERM "$ZTUNNEL_PID" 2>/dev/null || true
    # Give it a moment to shut down cleanly, then make sure it is gone.
    for _ in $(seq 1 50); do
      kill -0 "$ZTUNNEL_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$ZTUNNEL_PID" 2>/dev/null || true
    wait "$ZTUNNEL_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -n "$FIXTURE_DIR" && -f "$FIXTURE_DIR/ztunnel.log" ]]; then
    echo "---- last lines of the ztunnel log ----"
    tail -n 40 "$FIXTURE_DIR/ztunnel.log" || true
  fi
  if [[ -n "$FIXTURE_DIR" ]]; then
    rm -rf -- "$FIXTURE_DIR"
  fi
  exit "$rc"
}

# A random 127.A.B.0/24 with nothing listening on it, so parallel runs (and other people's
# tests on this machine) do not collide.
fixture_pick_subnet() {
  local a b candidate
  for _ in $(seq 1 20); do
    read -r a b < <(od -An -N2 -tu1 /dev/urandom)
    a=$((a % 254 + 1))  # 1..254: leave 127.0.x.x alone
    b=$((b % 255))
    candidate="127.${a}.${b}"
    if command -v ss >/dev/null 2>&1; then
      if ss -Htan | awk '{print $4; print $5}' | grep -q "^${candidate//./\\.}\."; then
        continue
      fi
    fi
    echo "$candidate"
    return 0
  done
  die "could not find a free 127.x.y.0/24 subnet"
}

# HTTP GET over bash's /dev/tcp; prints the status line. No curl needed.
fixture_http_status() {
  local host=$1 port=$2 path=$3
  # shellcheck disable=SC2016  # the inner script expands its own positional parameters
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3
    IFS= read -r line <&3 && printf "%s\n" "${line%$'"'"'\r'"'"'}"
  ' "$host" "$port" "$path" 2>/dev/null
}

fixture_write_config() {
  mkdir -p "$FIXTURE_DIR/cfg"
  cat >"$FIXTURE_DIR/cfg/mesh.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {sluice.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: demo, labels: {app: server}}
spec: {nodeName: node-b, serviceAccountName: server}
status: {phase: Running, podIP: ${POD_IP}}
EOF
}

# Starts the ztunnel and waits until /healthz/ready answers 200 (polling with a deadline: this is
# process start-up, there is nothing to block on).
fixture_start_ztunnel() {
  local binary=$1
  ZTUNNEL_LOG="$FIXTURE_DIR/ztunnel.log"
  "$binary" --node node-b --config-dir "$FIXTURE_DIR/cfg" --ca-dir "$FIXTURE_DIR/ca" \
    --trust-domain "$TRUST_DOMAIN" --hbone-port "$HBONE_PORT" \
    --admin "${ADMIN_IP}:15000" --metrics "${ADMIN_IP}:15020" --readiness "${ADMIN_IP}:15021" \
    --access-log "$FIXTURE_DIR/access.log" --workers 1 >"$ZTUNNEL_LOG" 2>&1 &
  ZTUNNEL_PID=$!
  local deadline=$((SECONDS + READY_DEADLINE_SECONDS)) status=""
  while ((SECONDS < deadline)); do
    if ! kill -0 "$ZTUNNEL_PID" 2>/dev/null; then
      ZTUNNEL_PID=""
      die "sluice-ztunnel exited during start-up (see log below)"
    fi
    status=$(fixture_http_status "$ADMIN_IP" 15021 /healthz/ready || true)
    if [[ "$status" == *" 200"* ]]; then
      echo "ztunnel ready (pid $ZTUNNEL_PID, pod $POD_IP:$HBONE_PORT, readiness $ADMIN_IP:15021)"
      [[ -s "$FIXTURE_DIR/ca/root-cert.pem" ]] || die "ztunnel is ready but wrote no ca/root-cert.pem"
      return 0
    fi
    sleep 0.1
  done
  die "ztunnel not ready within ${READY_DEADLINE_SECONDS}s (last readiness answer: '${status}')"
}

# Leaf certificate for CLIENT_SAN signed by the given CA. Short validity, P-256, clientAuth.
fixture_issue_client_cert() {
  local ca_cert=$1 ca_key=$2 key_out=$3 cert_out=$4
  local ext="$FIXTURE_DIR/client-ext.cnf"
  cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=critical,URI:${CLIENT_SAN}
EOF
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key_out" 2>/dev/null
  # Workload certificates carry their identity only in the URI SAN; an empty subject is legal
  # because the SAN is critical, but openssl req wants something, so use the trust domain.
  openssl req -new -key "$key_out" -subj "/O=${TRUST_DOMAIN}" -out "$key_out.csr" 2>/dev/null
  openssl x509 -req -in "$key_out.csr" -CA "$ca_cert" -CAkey "$ca_key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 1 -extfile "$ext" -out "$cert_out" 2>/dev/null
}

fixture_make_certs() {
  local ca="$FIXTURE_DIR/ca"
  ROOT_CERT="$ca/root-cert.pem"
  CLIENT_KEY="$FIXTURE_DIR/client-key.pem"
  CLIENT_CERT="$FIXTURE_DIR/client-cert.pem"
  fixture_issue_client_cert "$ROOT_CERT" "$ca/root-key.pem" "$CLIENT_KEY" "$CLIENT_CERT"
  openssl verify -CAfile "$ROOT_CERT" -purpose sslclient "$CLIENT_CERT" >/dev/null ||
    die "the client certificate does not verify against the ztunnel root"

  FOREIGN_ROOT="$FIXTURE_DIR/foreign-root-cert.pem"
  local foreign_root_key="$FIXTURE_DIR/foreign-root-key.pem"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$foreign_root_key" 2>/dev/null
  # Same trust-domain name as the real root: the ztunnel must refuse on the chain, not the name.
  openssl req -x509 -new -key "$foreign_root_key" -subj "/O=${TRUST_DOMAIN}/CN=Foreign root CA" \
    -days 1 -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -out "$FOREIGN_ROOT" 2>/dev/null
  FOREIGN_KEY="$FIXTURE_DIR/foreign-client-key.pem"
  FOREIGN_CERT="$FIXTURE_DIR/foreign-client-cert.pem"
  fixture_issue_client_cert "$FOREIGN_ROOT" "$foreign_root_key" "$FOREIGN_KEY" "$FOREIGN_CERT"
  if openssl verify -CAfile "$ROOT_CERT" "$FOREIGN_CERT" >/dev/null 2>&1; then
    die "the foreign certificate unexpectedly verifies against the ztunnel root"
  fi
  echo "issued $CLIENT_SAN by the ztunnel root and by a foreign root"
}

# Usage: fixture_start /path/to/sluice-ztunnel
fixture_start() {
  local binary=$1
  [[ -x "$binary" ]] || die "not an executable: $binary"
  command -v openssl >/dev/null || die "openssl CLI not found"
  FIXTURE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-interop.XXXXXX")
  trap fixture_cleanup EXIT
  trap 'exit 130' INT TERM
  local subnet
  subnet=$(fixture_pick_subnet)
  ADMIN_IP="${subnet}.1"
  POD_IP="${subnet}.3"
  OTHER_IP="${subnet}.4"
  fixture_write_config
  fixture_start_ztunnel "$binary"
  fixture_make_certs
}

# Prints the tally and exits non-zero if any check failed (or none ran).
fixture_finish() {
  echo "checks: $FIXTURE_CHECKS, failed: $FIXTURE_FAILURES"
  if ((FIXTURE_CHECKS == 0 || FIXTURE_FAILURES > 0)); then
    exit 1
  fi
  exit 0
}
