#!/usr/bin/env bash
# Runs a test binary inside qemu (TCG) on one of Debian's kernels, so the BPF code is checked
# against kernels older than the build machine's.
#
#   tests/vm/run.sh [OPTIONS] KERNEL [--] TEST_BINARY [ARGS...]
#   tests/vm/run.sh [OPTIONS] KERNEL --selftest      build tests/vm/selftest with g++ and run it
#   tests/vm/run.sh [OPTIONS] KERNEL --shell         interactive busybox shell (Ctrl-A X quits)
#   tests/vm/run.sh [OPTIONS] KERNEL --fetch         only download the kernel; print its vmlinuz
#
# KERNEL is a series (`6.1`, `6.12`): the newest Debian package linux-image-<series>...-cloud-amd64
# that apt offers here (then plain -amd64) is downloaded once into the cache and reused. It may
# also be a linux-image-*.deb or a vmlinuz file (modules from ../lib/modules/<release> beside it,
# from /lib/modules/<release>, or from SLUICE_VM_MODULES_DIR).
#
# The guest is an initramfs holding the test binary (at its host path), its shared libraries,
# iproute2's `ip`, dash as /bin/sh, busybox for the other tools, and the kernel modules the tests
# need (veth, bridge, ...). /proc, /sys, cgroup2 (/sys/fs/cgroup), bpffs (/sys/fs/bpf), debugfs
# and tracefs are mounted, /tmp is writable, `lo` is up; the binary runs as root in its own
# directory with stdin from /dev/null, its output goes to the serial console (shown here), then
# the guest powers off. Files it writes are lost. CI, GTEST_* and SLUICE_TEST_* variables are
# passed in; the guest also sees SLUICE_VM=1, SLUICE_VM_SERIES (e.g. 6.1) and SLUICE_VM_RELEASE
# (what uname -r must say).
#
# Options:
#   --timeout SECONDS   for the VM, from boot to power-off (default 600, env SLUICE_VM_TIMEOUT)
#   --env NAME=VALUE    set a variable in the guest (repeatable)
#   --include PATH      also copy PATH (and its libraries if it is an ELF file) into the guest,
#                       at the same path (repeatable)
#   --module NAME       also load kernel module NAME and its dependencies (repeatable)
#   --keep              keep the work directory (initramfs, console log) and print its path
#
# Environment: SLUICE_VM_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/sluice/vm),
# SLUICE_VM_FLAVOURS (default "cloud-amd64 amd64"), SLUICE_VM_PACKAGE (exact package name),
# SLUICE_VM_MEMORY (MiB, default 1024), SLUICE_VM_CPUS (default 2), SLUICE_VM_APPEND (extra
# kernel command line), SLUICE_VM_STRIP (default 1: strip debug info from copied binaries).
#
# Exit status: the test's own status (128+N if a signal N killed it), or
#   64 usage error             69 a host tool (qemu, busybox, cpio, ...) is missing
#   70 the guest ended without reporting the test's status (kernel panic, init failure)
#   77 the requested kernel is not available (no such package here and none cached)
#  124 timeout
set -euo pipefail

script_start=$EPOCHREALTIME
readonly kExitUsage=64 kExitNoTool=69 kExitNoStatus=70 kExitNoKernel=77 kExitTimeout=124
readonly kDefaultModules=(veth bridge dummy sch_ingress cls_bpf act_bpf)
readonly kMarker=SLUICE_VM_EXIT
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() {
  local code=$1
  shift
  log "$*"
  exit "$code"
}
usage() {
  sed -n '5,8p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2
  exit $kExitUsage
}
help() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit 0
}

# --- arguments -----------------------------------------------------------------------------------
timeout_s=${SLUICE_VM_TIMEOUT:-600}
keep=0
mode="test"
guest_env=()
includes=()
modules=("${kDefaultModules[@]}")
kernel_arg=
while [[ $# -gt 0 ]]; do
  case $1 in
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --timeout=*) timeout_s=${1#*=}; shift ;;
    --env) guest_env+=("${2:?}"); shift 2 ;;
    --include) includes+=("${2:?}"); shift 2 ;;
    --module) modules+=("${2:?}"); shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) help ;;
    --shell) mode=shell; shift ;;
    --selftest) mode=selftest; shift ;;
    --fetch) mode=fetch; shift ;;
    --) shift; break ;;
    -*) log "unknown option $1"; usage ;;
    *)
      if [[ -z $kernel_arg ]]; then kernel_arg=$1; shift; else break; fi ;;
  esac
done
[[ -n $kernel_arg ]] || usage
if [[ $mode == test ]]; then
  [[ $# -ge 1 ]] || usage
  test_binary=$1
  shift
  test_args=("$@")
elif [[ $# -gt 0 ]]; then
  usage
fi
[[ $timeout_s =~ ^[0-9]+$ ]] || die $kExitUsage "--timeout wants whole seconds, not '$timeout_s'"
for kv in "${guest_env[@]}"; do
  [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die $kExitUsage "--env wants NAME=VALUE, not '$kv'"
done

for tool in qemu-system-x86_64 cpio dpkg-deb timeout flock; do
  command -v "$tool" >/dev/null || die $kExitNoTool "$tool is missing (scripts/install-deps.sh)"
done
# ELF files with a program interpreter need their libraries copied along.
is_elf() { [[ $(head -c4 "$1" 2>/dev/null | tr -d '\0') == $'\x7fELF' ]]; }
is_dynamic() { readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }
busybox=$(command -v busybox || true)
if [[ -z $busybox ]] || is_dynamic "$busybox"; then
  die $kExitNoTool "a static busybox is needed (apt-get install busybox-static)"
fi
ip_tool=$(command -v ip || true)
[[ -n $ip_tool ]] || die $kExitNoTool "iproute2's ip is missing (apt-get install iproute2)"

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-vm.XXXXXX")
qemu_pid=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [[ -n $qemu_pid ]]; then kill "$qemu_pid" 2>/dev/null || true; fi
  if [[ $keep == 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the kernel ----------------------------------------------------------------------------------
cache=${SLUICE_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/vm}
mkdir -p "$cache"

# Prints "package version flavour" for the newest linux-image package of series $1 (e.g. 6.1)
# apt can fetch, trying the flavours in order; nothing if there is none.
newest_package() {
  local series_re=${1//./\\.} flavour names best_pkg best_ver pkg ver
  for flavour in ${SLUICE_VM_FLAVOURS:-cloud-amd64 amd64}; do
    # The ABI part is 6.1.0-56 or 6.12.117+deb12: "6.1" does not match 6.12, nor "amd64" the
    # cloud-amd64 flavour; -unsigned and -dbg packages are left out.
    mapfile -t names < <(apt-cache search --names-only \
      "^linux-image-${series_re}\.[0-9]+(-[0-9]+|\+deb[0-9]+)-${flavour}\$" 2>/dev/null |
      awk '{print $1}')
    [[ ${#names[@]} -gt 0 ]] || continue
    best_pkg='' best_ver=''
    # madison lists only versions some configured archive really offers.
    while read -r pkg ver; do
      if [[ -z $best_ver ]] || dpkg --compare-versions "$ver" gt "$best_ver"; then
        best_pkg=$pkg best_ver=$ver
      fi
    done < <(apt-cache madison "${names[@]}" 2>/dev/null | awk -F' *[|] *' '{print $1, $2}')
    if [[ -n $best_pkg ]]; then
      echo "$best_pkg $best_ver $flavour"
      return
    fi
  done
}

# Extracts a linux-image .deb into cache directory $2 (atomically: a half-done extraction is
# never seen by a concurrent run).
unpack_deb() {
  local deb=$1 dest=$2 tmp
  tmp=$(mktemp -d "$dest.partial.XXXXXX")
  dpkg-deb -x "$deb" "$tmp"
  rm -rf "$dest"
  mv "$tmp" "$dest"
}

# Whether cache directory $1 (<package>_<version>) holds a kernel of series $2, flavour $3.
cached_kernel_is() {
  local name=${1##*/} series_re=${2//./\\.}
  name=${name%%_*}
  # The ABI part is 6.1.0-56 or 6.12.117+deb12, so "amd64" does not match "cloud-amd64".
  [[ -d $1/boot && $name =~ ^linux-image-${series_re}\.[0-9]+(-[0-9]+|\+deb[0-9]+)-${3}$ ]]
}

# Prints the newest cached kernel tree of series $1 in one of the flavours, if any.
newest_cached() {
  local flavour dir best=''
  for flavour in ${SLUICE_VM_FLAVOURS:-cloud-amd64 amd64}; do
    for dir in "$cache"/linux-image-*_*; do
      cached_kernel_is "$dir" "$1" "$flavour" || continue
      if [[ -z $best ]] || dpkg --compare-versions "${dir##*_}" gt "${best##*_}"; then best=$dir; fi
    done
    [[ -n $best ]] && break
  done
  echo "$best"
}

# Downloads and unpacks package $1 version $2 into $3 unless it is there; then removes older
# kernels of series $4 and flavour $5 (when given), so a CI cache stays small. Fails quietly.
download_kernel() {
  local pkg=$1 ver=$2 dest=$3 series=$4 flavour=${5:-}
  (
    flock 9
    [[ -d $dest/boot ]] && exit 0
    dl=$(mktemp -d "$cache/download.XXXXXX")
    trap 'rm -rf "$dl"' EXIT
    log "downloading $pkg $ver into $cache"
    # APT's _apt sandbox user cannot write to root's cache: download as the caller instead.
    (cd "$dl" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$pkg=$ver" >&2) &&
      unpack_deb "$dl"/*.deb "$dest" || exit 1
    [[ -n $flavour ]] || exit 0
    for old in "$cache"/linux-image-*_*; do
      if [[ $old != "$dest" ]] && cached_kernel_is "$old" "$series" "$flavour"; then
        log "removing the superseded ${old##*/}"
        rm -rf "$old"
      fi
    done
  ) 9>"$cache/.lock"
}

# Sets kernel_dir (a tree with boot/vmlinuz-* and lib/modules/*) for a series, downloading once.
fetch_series() {
  local series=$1 pkg ver flavour found attempt
  for attempt in 1 2; do
    if [[ -n ${SLUICE_VM_PACKAGE:-} ]]; then
      found="$SLUICE_VM_PACKAGE $(apt-cache madison "$SLUICE_VM_PACKAGE" 2>/dev/null |
        awk -F' *[|] *' 'NR==1 {print $2}')"
    else
      found=$(newest_package "$series")
    fi
    pkg='' ver='' flavour=''
    read -r pkg ver flavour <<<"$found" || true
    if [[ -n $ver ]]; then
      kernel_dir=$cache/${pkg}_${ver}
      download_kernel "$pkg" "$ver" "$kernel_dir" "$series" "$flavour" && return
      log "apt-get download $pkg=$ver failed"
    fi
    # Security updates replace kernel packages in the archive: stale lists name ones gone.
    [[ $attempt == 1 && -n $ver && $(id -u) == 0 ]] || break
    log "refreshing the package lists (apt-get update) and trying again"
    apt-get update -qq >&2 || break
  done
  # Offline, or the archive no longer has it: the newest cached kernel of the series will do.
  kernel_dir=$(newest_cached "$series")
  if [[ -n $kernel_dir ]]; then
    log "using the cached $(basename "$kernel_dir")"
    return
  fi
  die $kExitNoKernel "no Debian kernel package for Linux $series can be fetched here (looked" \
    "for linux-image-$series.*-{${SLUICE_VM_FLAVOURS:-cloud-amd64 amd64}} with apt-cache" \
    "search; on Debian 12, bookworm has 6.1 and bookworm-security 6.1 and 6.12) and none is" \
    "cached in $cache"
}

series=
modules_dir=
if [[ $kernel_arg =~ ^[0-9]+\.[0-9]+$ ]]; then
  series=$kernel_arg
  fetch_series "$series"
  vmlinuz=$(find "$kernel_dir/boot" -name 'vmlinuz-*' | head -n1)
elif [[ -f $kernel_arg && $kernel_arg == *.deb ]]; then
  kernel_dir=$cache/$(basename "$kernel_arg" .deb)
  [[ -d $kernel_dir/boot ]] || (flock 9 && unpack_deb "$kernel_arg" "$kernel_dir") 9>"$cache/.lock"
  vmlinuz=$(find "$kernel_dir/boot" -name 'vmlinuz-*' | head -n1)
elif [[ -f $kernel_arg ]]; then
  vmlinuz=$(realpath "$kernel_arg")
  kernel_dir=$(dirname "$(dirname "$vmlinuz")")
else
  die $kExitNoKernel "KERNEL must be a series such as 6.1 or 6.12, a .deb or a vmlinuz file;" \
    "'$kernel_arg' is none of these"
fi
release=$(basename "$vmlinuz")
release=${release#vmlinuz-}
if [[ $release == "$(basename "$vmlinuz")" ]]; then
  # A bare bzImage: its header holds "6.1.0-56-cloud-amd64 (debian-kernel@...) #1 SMP ...".
  release=$(strings -n 8 "$vmlinuz" | sed -n 's/^\([0-9][^ ]*\) ([^)]*@[^)]*) #.*/\1/p' |
    head -n1)
  [[ -n $release ]] || die $kExitUsage "cannot tell the release of $vmlinuz; name it vmlinuz-<release>"
fi
[[ -n $series ]] || series=$(sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p' <<<"$release")
for candidate in "${SLUICE_VM_MODULES_DIR:-}" "$kernel_dir/lib/modules/$release" \
  "/lib/modules/$release"; do
  if [[ -n $candidate && -d $candidate ]]; then modules_dir=$candidate; break; fi
done
[[ -n $modules_dir ]] || log "no modules directory for $release: modules are not loaded"
if [[ $mode == fetch ]]; then
  echo "$vmlinuz"
  exit 0
fi

# --- the initramfs -------------------------------------------------------------------------------
root=$work/root
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{dev,proc,sys,tmp,run,etc,root}
# Merged /usr like the host, so every path ldd prints resolves inside the guest.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done

strip_debug=${SLUICE_VM_STRIP:-1}
declare -A copied=()
# Copies host file $1 to the same path in the guest; for an ELF file also its libraries.
copy_in() {
  local src=$1 dest lib
  [[ -n ${copied[$src]:-} ]] && return
  copied[$src]=1
  dest=$root$src
  mkdir -p "$(dirname "$dest")"
  cp -L "$src" "$dest"
  is_elf "$src" || return 0
  if [[ $strip_debug == 1 ]]; then
    # Debug info only slows building and unpacking the initramfs; nothing reads it in there.
    objcopy --strip-debug "$dest" 2>/dev/null || true
  fi
  if is_dynamic "$src"; then
    # "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
    while read -r lib; do
      [[ -n $lib ]] && copy_in "$lib"
    done < <(ldd "$src" 2>/dev/null | awk '/=> \// {print $3} /^\t\// {print $1}')
  fi
}

cp "$busybox" "$root/usr/bin/busybox"
copy_in "$(realpath "$ip_tool")"
[[ -e $root/usr/bin/ip ]] || ln -s "$(realpath "$ip_tool")" "$root/usr/bin/ip"
# /bin/sh must not be Debian's static busybox: its ash runs built-in applets before searching
# PATH, so system("ip link add ... type veth") would reach busybox's ip, which ignores "veth".
sh_tool=$(command -v dash || true)
if [[ -n $sh_tool ]]; then
  copy_in "$(realpath "$sh_tool")"
  [[ -e $root/usr/bin/dash ]] || ln -s "$(realpath "$sh_tool")" "$root/usr/bin/dash"
  ln -s dash "$root/usr/bin/sh"
else
  log "dash is missing: /bin/sh is busybox, whose applets (ip!) shadow the real tools"
fi
while read -r applet; do
  # Real tools come first; busybox fills in the rest (mount, insmod, sysctl, ...).
  name=${applet##*/}
  [[ -e $root/usr/bin/$name || -e $root/usr/sbin/$name || -L $root/usr/bin/$name ]] && continue
  [[ $name == busybox ]] && continue
  ln -s /usr/bin/busybox "$root/$applet"
done < <("$busybox" --list-full)

if [[ $mode == selftest ]]; then
  command -v g++ >/dev/null || die $kExitNoTool "g++ is missing (build-essential)"
  log "building the selftest"
  test_binary=$work/sluice_vm_selftest
  g++ -std=c++20 -O1 -Wall -Wextra -o "$test_binary" "$here/selftest/vm_selftest.cc" \
    -lgtest_main -lgtest -pthread || die $kExitNoTool "building the selftest failed"
  test_args=()
  mode="test"
fi

cwd=/root
if [[ $mode == test ]]; then
  resolved=$(command -v "$test_binary" || true)
  [[ -n $resolved && -f $resolved ]] || die $kExitUsage "test binary '$test_binary' not found"
  test_binary=$(realpath "$resolved")
  copy_in "$test_binary"
  cwd=$(dirname "$test_binary")
fi
for extra in "${includes[@]}"; do
  [[ -e $extra ]] || die $kExitUsage "--include $extra: no such file"
  copy_in "$(realpath "$extra")"
done

# Kernel modules and their dependencies, read from each module's .modinfo (the .deb has no
# modules.dep and the host may have no kmod), decompressed, listed in load order.
declare -A module_file=() module_done=()
module_order=()
if [[ -n $modules_dir ]]; then
  while read -r f; do
    n=${f##*/}
    n=${n%%.ko*}
    module_file[${n//-/_}]=$f
  done < <(find "$modules_dir" -name '*.ko*' -type f)
fi
builtin_list=$modules_dir/modules.builtin
add_module() {
  local name=${1//-/_} f deps dep
  [[ -n ${module_done[$name]:-} ]] && return
  module_done[$name]=1
  f=${module_file[$name]:-}
  if [[ -z $f ]]; then
    if [[ -f $builtin_list ]] && sed 's/-/_/g' "$builtin_list" | grep -q "/$name\.ko$"; then
      return
    fi
    log "kernel $release has no module $name (neither built in nor in $modules_dir)"
    return
  fi
  mkdir -p "$root/lib/modules"
  # 6.12's modules are .ko.xz; busybox insmod may not read them, the kernel reads plain ones.
  case $f in
    *.xz) "$busybox" xzcat "$f" >"$root/lib/modules/$name.ko" ;;
    *.gz) "$busybox" zcat "$f" >"$root/lib/modules/$name.ko" ;;
    *.zst) zstd -qdc "$f" >"$root/lib/modules/$name.ko" ;;
    *) cp "$f" "$root/lib/modules/$name.ko" ;;
  esac
  deps=$(tr '\0' '\n' <"$root/lib/modules/$name.ko" | sed -n 's/^depends=//p' | head -n1)
  for dep in ${deps//,/ }; do add_module "$dep"; done
  module_order+=("$name")
}
if [[ -n $modules_dir ]]; then
  for m in "${modules[@]}"; do add_module "$m"; done
fi

# Single quotes survive busybox sh; a quote inside is closed, escaped and reopened.
shell_quote() {
  local s=${1//\'/\'\\\'\'}
  printf "'%s'" "$s"
}
{
  echo "export SLUICE_VM=1"
  echo "export SLUICE_VM_SERIES=$(shell_quote "$series")"
  echo "export SLUICE_VM_RELEASE=$(shell_quote "$release")"
  while IFS='=' read -r name _; do
    [[ $name =~ ^(CI|GTEST_[A-Z0-9_]+|SLUICE_TEST_[A-Z0-9_]+)$ ]] &&
      echo "export $name=$(shell_quote "${!name}")"
  done < <(env)
  for kv in "${guest_env[@]}"; do echo "export ${kv%%=*}=$(shell_quote "${kv#*=}")"; done
} >"$root/etc/sluice-vm.env"
declare -A module_params=([dummy]=numdummies=0)  # no stray dummy0 in the tests' view
for m in "${module_order[@]}"; do
  echo "$m ${module_params[$m]:-}"
done >"$root/etc/sluice-vm.modules"
# The debug shell is busybox ash (line editing); aliases keep it off its own ip applet.
for f in "$root"/usr/bin/* "$root"/usr/sbin/*; do
  [[ -L $f && $(readlink "$f") == /usr/bin/busybox ]] && continue
  echo "alias ${f##*/}=${f#"$root"}"
done >"$root/etc/profile"
{
  printf 'cd %s &&' "$(shell_quote "$cwd")"
  if [[ $mode == test ]]; then
    printf ' %s' "$(shell_quote "$test_binary")"
    for a in "${test_args[@]}"; do printf ' %s' "$(shell_quote "$a")"; done
  fi
  echo
} >"$root/etc/sluice-vm.command"
echo "$mode" >"$root/etc/sluice-vm.mode"
cp "$here/init.sh" "$root/init"
chmod 0755 "$root/init"

initrd=$work/initrd.cpio
(cd "$root" && find . -mindepth 1 -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$initrd"

# --- the VM --------------------------------------------------------------------------------------
append="console=ttyS0 panic=-1 quiet ${SLUICE_VM_APPEND:-}"
# No default devices (NIC option ROM, VGA): the guest needs only the serial console. qboot
# boots about a second faster than SeaBIOS under TCG and prints nothing.
# One host thread for all vCPUs: with multi-threaded TCG the guest kernel's live code patching
# (text_poke int3) raced now and then (an Oops in hrtimer_start_range_ns, 1 boot in 10 of 6.12
# here); single-threaded, 0 in 10, and the BPF suite runs as fast (59 s either way).
qemu=(qemu-system-x86_64 -accel tcg,thread=single -m "${SLUICE_VM_MEMORY:-1024}" -smp "${SLUICE_VM_CPUS:-2}"
  -nodefaults -no-user-config -display none -no-reboot -kernel "$vmlinuz" -initrd "$initrd"
  -append "$append")
for bios in /usr/share/qemu/qboot.rom /usr/share/qboot/bios.bin; do
  if [[ -f $bios ]]; then qemu+=(-bios "$bios"); break; fi
done

if [[ $mode == shell ]]; then
  log "booting $release with a shell; Ctrl-A X quits qemu, 'poweroff -f' the guest"
  "${qemu[@]}" -serial mon:stdio || true
  exit 0
fi
qemu+=(-serial stdio)

log "booting $release ($(du -h "$initrd" | cut -f1) initramfs), timeout ${timeout_s}s"
console=$work/console.log
fifo=$work/console.fifo
mkfifo "$fifo"
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
start=$EPOCHREALTIME
# Not a pipeline: the qemu pid is needed to stop it when this script is interrupted.
timeout -k 5 "$timeout_s" "${qemu[@]}" </dev/null >"$fifo" 2>&1 &
qemu_pid=$!
status=
test_start=
while IFS= read -r line || [[ -n $line ]]; do
  line=${line%$'\r'}
  printf '%s\n' "$line" >>"$console"
  case $line in
    *SLUICE_VM_START*)
      test_start=$EPOCHREALTIME
      log "guest up after $(elapsed "$start" "$test_start") s;" \
        "running the test (${line#*SLUICE_VM_START })"
      continue ;;
  esac
  # init prints the marker on a line of its own, last; a test printing one too is overruled.
  if [[ $line =~ ^$kMarker=([0-9]+)$ ]]; then status=${BASH_REMATCH[1]}; fi
  # The kernel's farewell is noise; the log keeps it.
  [[ -n $status && $line == *"reboot: Power down"* ]] || printf '%s\n' "$line"
done <"$fifo"
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=
end=$EPOCHREALTIME

if [[ $qemu_rc == 124 || $qemu_rc == 137 ]]; then
  die $kExitTimeout "timed out after ${timeout_s}s (the console log above shows how far it got)"
fi
if [[ ! $status =~ ^[0-9]+$ ]]; then
  die $kExitNoStatus "the guest stopped without reporting the test's status (qemu exit" \
    "$qemu_rc; look for a kernel panic or an init error above)"
fi
log "test exited with $status; test ran $(elapsed "${test_start:-$start}" "$end") s; VM" \
  "$(elapsed "$start" "$end") s; total with preparation $(elapsed "$script_start" "$end") s" \
  "(kernel $release)"
exit "$status"
