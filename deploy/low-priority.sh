#!/bin/sh
# Run a command at a low CPU priority: Celery workers do throughput work, the web tier on the same
# host is latency-sensitive. `nice` alone is not enough where the kernel groups processes by session
# (CONFIG_SCHED_AUTOGROUP, the default on Debian): honcho and bench_load.py start every process in
# a session of its own, and CPU time is then shared fairly between sessions whatever their nice
# values. So the session's group is lowered too, but only when the session was made for this
# command (it leads it, or its parent `sh -c` does), never a terminal's session.
# Usage: deploy/low-priority.sh COMMAND [ARGS...]
sid=$(cut -d' ' -f6 "/proc/$$/stat" 2>/dev/null)
if [ "$sid" = "$$" ] || [ "$sid" = "$PPID" ]; then
  { echo 10 > /proc/self/autogroup; } 2>/dev/null
fi
exec nice -n 10 "$@"
