#!/usr/bin/env bash
# Configures and builds Sluice the one way every script does (the demo, the tests, the
# benchmarks), so that whichever runs second reuses the first one's objects instead of
# rebuilding everything for a different flag.
#   scripts/build.sh [BUILD_DIR [TARGET...]]   (default: build, every target)
# SLUICE_SANITIZE (e.g. address,undefined) is honoured; use another BUILD_DIR for it.
# Progress: ninja's [done/total] line, on one line on a terminal and a line per step otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
shift $(($# > 0 ? 1 : 0))
echo "==> configure ($build_dir)"
# Warnings are errors everywhere (as in CI): one configuration for every caller.
cmake -S . -B "$build_dir" -G Ninja -DSLUICE_WERROR=ON \
  ${SLUICE_SANITIZE:+-DSLUICE_SANITIZE="$SLUICE_SANITIZE"} >/dev/null
echo "==> build ${*:-everything} (2 cores: a first build takes about 20 minutes, later ones seconds)"
NINJA_STATUS="[%f/%t %es] " ninja -C "$build_dir" "$@"
