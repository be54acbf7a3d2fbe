#!/usr/bin/env bash
# HBONE interop: a Node.js http2 client (an independent TLS + HTTP/2 stack) against sluice-ztunnel.
# Usage: run_node_interop.sh /path/to/sluice-ztunnel [/path/to/node]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ztunnel_fixture.sh
source "$here/ztunnel_fixture.sh"

[[ $# -ge 1 ]] || die "usage: $0 /path/to/sluice-ztunnel [/path/to/node]"
ztunnel=$1
node=${2:-node}
command -v "$node" >/dev/null || die "node not found: $node"
echo "node $("$node" --version), $(openssl version)"

fixture_start "$ztunnel"

rc=0
env POD_IP="$POD_IP" OTHER_IP="$OTHER_IP" HBONE_PORT="$HBONE_PORT" ROOT_CERT="$ROOT_CERT" \
  CLIENT_CERT="$CLIENT_CERT" CLIENT_KEY="$CLIENT_KEY" FOREIGN_CERT="$FOREIGN_CERT" \
  FOREIGN_KEY="$FOREIGN_KEY" SERVER_SAN="$SERVER_SAN" \
  "$node" "$here/hbone_node_client.js" || rc=$?

# The ztunnel must have survived everything the client threw at it.
if kill -0 "$ZTUNNEL_PID" 2>/dev/null; then
  pass "ztunnel is still running after the client checks"
else
  fail "ztunnel is still running after the client checks"
fi
if ((rc != 0)); then
  fail "hbone_node_client.js checks (exit code $rc)"
else
  pass "hbone_node_client.js checks"
fi
fixture_finish
