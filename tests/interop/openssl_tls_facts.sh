#!/usr/bin/env bash
# shellcheck disable=SC2317  # the predicates below are called through expect()
# HBONE TLS facts as seen by the openssl 3 CLI (s_client) against sluice-ztunnel:
# TLS 1.3 only, AES-GCM suites only, ALPN h2 required, a client certificate from the mesh CA
# required, and a server identity spiffe://cluster.local/ns/demo/sa/server on a P-256 key.
# Usage: openssl_tls_facts.sh /path/to/sluice-ztunnel
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ztunnel_fixture.sh
source "$here/ztunnel_fixture.sh"

[[ $# -ge 1 ]] || die "usage: $0 /path/to/sluice-ztunnel"
openssl version
fixture_start "$1"

readonly S_CLIENT_DEADLINE=10
readonly AES_GCM_SUITES="TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384"
readonly H2_PREFACE='PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
readonly H2_EMPTY_SETTINGS='\x00\x00\x00\x04\x00\x00\x00\x00\x00'
# PING on stream 1: a connection error (RFC 9113 6.7), so the server answers GOAWAY and closes.
readonly H2_BAD_PING='\x00\x00\x08\x06\x00\x00\x00\x00\x01AAAAAAAA'

out="$FIXTURE_DIR/s_client.out"

# s_client against the HBONE port; stdin is closed right away, so it returns after the handshake.
# HBONE sends no SNI, hence -noservername. Sets $s_rc, writes stdout+stderr to $out.
s_client() {
  s_rc=0
  timeout "$S_CLIENT_DEADLINE" openssl s_client -connect "${POD_IP}:${HBONE_PORT}" -noservername \
    "$@" </dev/null >"$out" 2>&1 || s_rc=$?
}

# Like s_client but sends $1 (printf format, may be empty) and keeps reading until the server closes
# (-ign_eof): TLS 1.3 servers judge the client certificate after the client's handshake is done,
# so a refusal only shows up as an alert on the first read. A server that never closes is a
# failure by timeout (exit code 124).
s_client_exchange() {
  local bytes=$1
  shift
  s_rc=0
  # shellcheck disable=SC2059
  printf "$bytes" | timeout "$S_CLIENT_DEADLINE" openssl s_client \
    -connect "${POD_IP}:${HBONE_PORT}" -noservername -ign_eof "$@" >"$out.data" 2>"$out.err" ||
    s_rc=$?
  cat "$out.data" "$out.err" >"$out"
}

negotiated_cipher() { sed -n 's/^New, \([^,]*\), Cipher is \(.*\)$/\1 \2/p' "$out" | head -n1; }
show_alert() { grep -ao 'alert [a-z ]*:.*SSL alert number [0-9]*' "$out" | sed 's/:.*SSL/ ... SSL/' | head -n1; }
has() { grep -aq -- "$1" "$out"; }

# expect WHAT OBSERVED COMMAND...: PASS if COMMAND succeeds, else FAIL; prints what was observed.
expect() {
  local what=$1 detail=$2
  shift 2
  if "$@"; then pass "$what ($detail)"; else fail "$what ($detail)"; fi
}
equals() { [[ "$1" == "$2" ]]; }
is_one_of() { [[ " $2 " == *" $1 "* ]]; }
lacks() { ! has "$1"; }
exited_nonzero() { [[ $s_rc -ne 0 ]]; }
# The server closed the connection before s_client's deadline (timeout exits with 124).
server_closed() { [[ $s_rc -ne 124 ]]; }
# A failed handshake: s_client exits non-zero and negotiated nothing.
handshake_failed() { [[ $s_rc -ne 0 && "${cipher:-}" == "(NONE)" ]]; }
handshake_got() { [[ $s_rc -eq 0 && "${cipher:-}" == "$1" ]]; }
frames_matching() { grep -- "$1" <<<"$frames" | paste -sd, - | grep . || echo none; }
frame_seen() { grep -qx -- "$1" <<<"$frames"; }
settings_seen() { grep -q '^SETTINGS ' <<<"$frames"; }
alert_seen() { grep -aq "SSL alert number $1\$" "$out"; }

client_auth=(-cert "$CLIENT_CERT" -key "$CLIENT_KEY")
trust_root=(-CAfile "$ROOT_CERT" -verify_return_error)

echo "== handshake with the mesh client certificate: -alpn h2"
s_client -alpn h2 "${client_auth[@]}" "${trust_root[@]}" -showcerts
read -r version cipher <<<"$(negotiated_cipher)" || true
expect "s_client completes the handshake" "exit $s_rc" equals "$s_rc" 0
expect "protocol is TLSv1.3" "got '${version:-none}'" equals "${version:-}" TLSv1.3
expect "cipher is one of $AES_GCM_SUITES" "got '${cipher:-none}'" \
  is_one_of "${cipher:-none}" "$AES_GCM_SUITES"
expect "ALPN protocol: h2" "got '$(grep -a 'ALPN' "$out" | head -n1)'" has '^ALPN protocol: h2$'
expect "server chain verifies against the ztunnel root" \
  "$(grep -a 'Verify return code' "$out" | head -n1)" has '^Verify return code: 0 (ok)'

# The first PEM block s_client prints is the server's leaf.
server_cert="$FIXTURE_DIR/server-cert.pem"
sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/{p;/-----END CERTIFICATE-----/q}' \
  "$out" >"$server_cert"
server_san=$(openssl x509 -in "$server_cert" -noout -ext subjectAltName 2>/dev/null |
  sed -n 's/^ *//;2p' || true)
expect "server certificate SAN is URI:$SERVER_SAN" "got '$server_san'" \
  equals "$server_san" "URI:$SERVER_SAN"
server_curve=$(openssl x509 -in "$server_cert" -noout -text 2>/dev/null |
  sed -n 's/^ *NIST CURVE: //p' || true)
expect "server key is ECDSA P-256" "got '${server_curve:-none}'" equals "$server_curve" P-256

echo "== each AES-GCM suite alone is accepted; ChaCha20 alone is refused"
for suite in $AES_GCM_SUITES; do
  s_client -alpn h2 "${client_auth[@]}" "${trust_root[@]}" -ciphersuites "$suite"
  read -r version cipher <<<"$(negotiated_cipher)" || true
  expect "client offering only $suite gets it" "exit $s_rc, cipher '${cipher:-none}'" \
    handshake_got "$suite"
done
s_client -alpn h2 "${client_auth[@]}" "${trust_root[@]}" -ciphersuites TLS_CHACHA20_POLY1305_SHA256
read -r version cipher <<<"$(negotiated_cipher)" || true
expect "client offering only TLS_CHACHA20_POLY1305_SHA256 is refused" \
  "exit $s_rc, cipher '${cipher:-none}', '$(show_alert)'" handshake_failed

echo "== -tls1_2 is refused"
s_client -tls1_2 -alpn h2 "${client_auth[@]}" "${trust_root[@]}"
read -r version cipher <<<"$(negotiated_cipher)" || true
expect "TLS 1.2 handshake fails" "exit $s_rc, cipher '${cipher:-none}'" handshake_failed
expect "server answers TLS 1.2 with alert protocol_version (70)" "got '$(show_alert)'" \
  alert_seen 70

echo "== ALPN other than h2 is refused"
s_client -alpn http/1.1 "${client_auth[@]}" "${trust_root[@]}"
expect "client offering only http/1.1 is refused" "exit $s_rc" exited_nonzero
expect "the refusal is alert no_application_protocol (120)" "got '$(show_alert)'" alert_seen 120

echo "== with the mesh certificate the server speaks HTTP/2 after the handshake"
s_client_exchange "${H2_PREFACE}${H2_EMPTY_SETTINGS}${H2_BAD_PING}" -alpn h2 -quiet \
  "${client_auth[@]}" "${trust_root[@]}"
# -quiet: only application data on stdout ($out.data). Split it into frames:
# length(3) type(1) flags(1) stream(4) payload. Plain POSIX awk (Debian's awk is mawk).
frames=$(od -An -v -tu1 "$out.data" | awk '
  { for (f = 1; f <= NF; f++) b[++n] = $f }
  function num(at, count,   v, k) { v = 0; for (k = 0; k < count; k++) v = v * 256 + b[at + k]; return v }
  END {
    i = 1
    while (i + 8 <= n) {
      len = num(i, 3); type = b[i + 3]; sid = num(i + 5, 4) % 2147483648; p = i + 9
      if (type == 4) {
        if (len == 0) print "SETTINGS_ACK"
        for (j = p; j + 5 < p + len; j += 6) printf "SETTINGS %d=%d\n", num(j, 2), num(j + 2, 4)
      } else if (type == 8) {
        printf "WINDOW_UPDATE %d %d\n", sid, num(p, 4) % 2147483648
      } else if (type == 7) {
        printf "GOAWAY %d\n", num(p + 4, 4)
      } else {
        printf "FRAME type=%d stream=%d length=%d\n", type, sid, len
      }
      i = p + len
    }
  }')
while IFS= read -r frame; do echo "  frame: $frame"; done <<<"$frames"
expect "no TLS alert with the mesh certificate" "got '$(show_alert)'" lacks 'SSL alert number'
expect "server sends its HTTP/2 SETTINGS" "$(frames_matching '^SETTINGS ')" settings_seen
expect "server SETTINGS_INITIAL_WINDOW_SIZE is 4 MiB" "$(frames_matching '^SETTINGS 4=')" \
  frame_seen 'SETTINGS 4=4194304'
conn_increment=$(awk '$1 == "WINDOW_UPDATE" && $2 == 0 { s += $3 } END { print s + 0 }' <<<"$frames")
expect "server connection window is 16 MiB" "65535 + $conn_increment" \
  equals "$((65535 + conn_increment))" 16777216
expect "a PING on stream 1 is answered GOAWAY PROTOCOL_ERROR (the server parses our frames)" \
  "$(frames_matching '^GOAWAY')" frame_seen 'GOAWAY 1'
expect "server closes the connection after GOAWAY" "s_client exit $s_rc; 124 = timed out" server_closed

echo "== without a client certificate the server refuses"
# Send nothing, only read: bytes the server never reads could turn its close into a TCP reset
# that races the alert.
s_client_exchange '' -alpn h2 "${trust_root[@]}"
expect "server closes the connection of a client without a certificate" "s_client exit $s_rc; 124 = timed out" \
  server_closed
expect "server sends alert certificate_required (116)" "got '$(show_alert)'" alert_seen 116

echo "== a client certificate from a foreign CA is refused"
s_client_exchange '' -alpn h2 -cert "$FOREIGN_CERT" -key "$FOREIGN_KEY" "${trust_root[@]}"
expect "server closes the connection of a foreign-CA client" "s_client exit $s_rc; 124 = timed out" server_closed
expect "server sends alert unknown_ca (48)" "got '$(show_alert)'" alert_seen 48

echo "== control: the verification check above can fail"
s_client -alpn h2 "${client_auth[@]}" -CAfile "$FOREIGN_ROOT" -verify_return_error
expect "s_client trusting only a foreign root rejects the server" "exit $s_rc" exited_nonzero
expect "... and reports a verification error" "$(grep -a 'Verify return code' "$out" | head -n1)" \
  lacks '^Verify return code: 0 (ok)'

fixture_finish
