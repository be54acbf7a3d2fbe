#!/bin/sh
# /init of the initramfs that tests/vm/run.sh builds (dash as PID 1, busybox for the tools).
# Prepares what the BPF tests expect of a machine, runs /etc/sluice-vm.command, reports its
# status on the console as SLUICE_VM_EXIT=<code> and powers off. PID 1 must never exit: the
# kernel would panic.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb

mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

fail() {
  echo "init: $*"
  echo "SLUICE_VM_EXIT=70"
  poweroff -f
}

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
# /tmp and /run stay on the initramfs (already a tmpfs): a mount would hide a test binary that
# run.sh copied to its host path under /tmp.
chmod 1777 /tmp
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "mount cgroup2 on /sys/fs/cgroup"
mount -t bpf -o mode=0700 bpf /sys/fs/bpf || fail "mount bpffs on /sys/fs/bpf"
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
# Tests create child cgroups and expect the usual controllers to be delegable.
read -r controllers </sys/fs/cgroup/cgroup.controllers
for c in $controllers; do
  echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
done

while read -r m params; do
  # $params unquoted: each word is one module parameter.
  # shellcheck disable=SC2086
  [ -n "$m" ] && { insmod "/lib/modules/$m.ko" $params || echo "init: insmod $m failed"; }
done </etc/sluice-vm.modules

hostname sluice-vm
ip link set lo up || fail "ip link set lo up"
# shellcheck source=/dev/null  # written by run.sh
. /etc/sluice-vm.env

if [ "$(cat /etc/sluice-vm.mode)" = shell ]; then
  echo "sluice-vm: $(uname -r); 'poweroff -f' ends the VM"
  # cttyhack gives the shell a controlling terminal, so Ctrl-C reaches its children.
  setsid cttyhack ash -l
  poweroff -f
fi

echo "SLUICE_VM_START release=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)s"
sh /etc/sluice-vm.command </dev/null
status=$?
# The test's last line may lack a newline; the marker must start a line.
echo
echo "SLUICE_VM_EXIT=$status"
sync
poweroff -f
