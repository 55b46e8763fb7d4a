#!/bin/sh
# Run a command at the lowest CPU priority: Celery workers do throughput work, the web tier on the
# same host is latency-sensitive and must win every wakeup.
#  1. Where the kernel lets us (root, or a delegated cgroup), the command joins a cgroup marked
#     `cpu.idle` (the cgroup form of SCHED_IDLE; systemd's `CPUWeight=idle` does the same in
#     deploy/systemd/calserv-worker.service): it runs only on CPU time nothing else wants.
#  2. Otherwise `nice` is not enough where the kernel groups processes by session
#     (CONFIG_SCHED_AUTOGROUP, the default on Debian): honcho and bench_load.py start every
#     process in a session of its own, and CPU time is then shared fairly between sessions
#     whatever their nice values. So the session's group is lowered too, but only when the session
#     was made for this command (it leads it, or its parent `sh -c` does), never a terminal's.
#  3. In both cases the process itself is SCHED_IDLE (`chrt --idle`; else the lowest `nice`).
# Usage: deploy/low-priority.sh COMMAND [ARGS...]
idle_cgroup() {
  for dir in /sys/fs/cgroup/cpu/calserv-idle /sys/fs/cgroup/calserv-idle; do
    parent=${dir%/*}
    [ -w "$parent" ] && [ -f "$parent/cgroup.procs" ] || continue
    if [ "$parent" = /sys/fs/cgroup ] && ! grep -qw cpu "$parent/cgroup.subtree_control" 2>/dev/null; then
      continue  # cgroup v2 without the cpu controller delegated here
    fi
    mkdir -p "$dir" 2>/dev/null && echo 1 > "$dir/cpu.idle" 2>/dev/null \
      && echo $$ > "$dir/cgroup.procs" 2>/dev/null && return 0
  done
  return 1
}
if ! idle_cgroup; then
  sid=$(cut -d' ' -f6 "/proc/$$/stat" 2>/dev/null)
  if [ "$sid" = "$$" ] || [ "$sid" = "$PPID" ]; then
    { echo 19 > /proc/self/autogroup; } 2>/dev/null
  fi
fi
command -v chrt >/dev/null 2>&1 && exec chrt --idle 0 "$@"
exec nice -n 19 "$@"
