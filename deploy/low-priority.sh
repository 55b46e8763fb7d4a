#!/bin/sh
# Run a command at a lower but bounded CPU weight: Celery workers do throughput work, the web tier
# on the same host is latency-sensitive and should win most wakeups, yet a busy host must never
# starve the workers (SCHED_IDLE or cgroup cpu.idle would: with two CPU-bound processes at normal
# priority on the host, a 0.2 s job took seconds).
#  1. Where the kernel lets us (root, or a delegated cgroup), the command joins a cgroup with
#     `cpu.weight` 20 (one fifth of the default 100; `cpu.shares` 205 on cgroup v1), as systemd's
#     `CPUWeight=20` in deploy/systemd/calserv-worker@.service does.
#  2. Otherwise `nice` alone is not enough where the kernel groups processes by session
#     (CONFIG_SCHED_AUTOGROUP, the default on Debian): bench_load.py starts every
#     process in a session of its own, and CPU time is then shared between sessions whatever
#     their nice values. So the session's group gets nice 10 too, but only when the session was
#     made for this command (it leads it, or its parent `sh -c` does), never a terminal's.
#  3. In both cases the process itself runs at nice 10 (normal scheduling policy, SCHED_OTHER).
# Usage: deploy/low-priority.sh COMMAND [ARGS...]
NICE=10
WEIGHT=20  # cgroup v2 cpu.weight (default 100)
SHARES=205 # the same for cgroup v1 cpu.shares (default 1024), as systemd converts it
weighted_cgroup() {
  if [ -f /sys/fs/cgroup/cgroup.subtree_control ]; then  # cgroup v2
    grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || return 1
    dir=/sys/fs/cgroup/calserv-workers file=cpu.weight value=$WEIGHT
  else  # cgroup v1 with the cpu controller mounted on its own
    dir=/sys/fs/cgroup/cpu/calserv-workers file=cpu.shares value=$SHARES
  fi
  [ -w "${dir%/*}" ] || return 1
  mkdir -p "$dir" 2>/dev/null && echo "$value" > "$dir/$file" 2>/dev/null \
    && echo $$ > "$dir/cgroup.procs" 2>/dev/null
}
if ! weighted_cgroup; then
  sid=$(cut -d' ' -f6 "/proc/$$/stat" 2>/dev/null)
  if [ "$sid" = "$$" ] || [ "$sid" = "$PPID" ]; then
    { echo "$NICE" > /proc/self/autogroup; } 2>/dev/null
  fi
fi
exec nice -n "$NICE" "$@"
