#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) and runs every test through ctest.
#   scripts/test.sh                 install deps, build (warnings are errors), run all tests
#   scripts/test.sh -L unit         pass ctest options through (here: only the unit label)
# BUILD_DIR (default build) and SLUICE_SANITIZE (e.g. address,undefined) are honoured.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -eq 0 ]]; then
  scripts/install-deps.sh
else
  echo "test.sh: not root, skipping dependency installation (run scripts/install-deps.sh as root)" >&2
fi

build_dir=${BUILD_DIR:-build}
scripts/build.sh "$build_dir"
echo "==> test"
ctest --test-dir "$build_dir" --output-on-failure --timeout 600 -j2 "$@"
