#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of Sluice from Debian 12 packages.
# Run as root on a fresh machine; safe to run again (apt-get skips what is installed).
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: run as root (it calls apt-get install)" >&2
  exit 1
fi

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config git
  # Boost 1.81 (Asio 1.26, Beast, JSON, URL); conflicts with the default 1.74 -dev packages
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libnghttp2-dev libre2-dev libyaml-cpp-dev libspdlog-dev libfmt-dev prometheus-cpp-dev
  # BPF toolchain
  libbpf-dev bpftool clang llvm libelf-dev zlib1g-dev
  # tests
  libgtest-dev libgmock-dev libbenchmark-dev libclang-rt-14-dev
  iproute2 curl openssl nodejs nghttp2-client procps psmisc python3-grpcio
  # VM kernel tests
  qemu-system-x86 busybox-static cpio
  # benchmarks
  iperf3 sockperf haproxy wrk util-linux jq
)

# A stamp keeps repeat runs (every scripts/test.sh) from paying for apt-get update.
stamp=/var/lib/sluice-deps.stamp
want=$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-16)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]] && dpkg -s "${packages[@]}" >/dev/null 2>&1; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Boost 1.74's -dev packages would conflict with 1.81's.
if dpkg -s libboost-dev >/dev/null 2>&1 || dpkg -s libboost1.74-dev >/dev/null 2>&1; then
  apt-get remove -y -qq 'libboost*1.74-dev' libboost-dev || true
fi
apt-get install -y -qq --no-install-recommends "${packages[@]}"
echo "$want" > "$stamp"
