"""Celery settings, read by the worker, Flower and the web tier (which only sends tasks).

Reliability first: a task is acknowledged only after it finishes (late acks), a worker takes one
task at a time (prefetch 1), a task whose worker died is given back to the queue, and the job row in
Postgres, not Celery's result backend, records the outcome. Built from the process's settings
(`config.settings()`, read once when Celery loads this module).
"""

from config import settings

_s = settings()

broker_url = _s.redis_url
result_backend = None
task_ignore_result = True
task_serializer = "json"
accept_content = ["json"]
task_default_queue = _s.queue
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_soft_time_limit = _s.task_soft_time_limit
task_time_limit = _s.task_time_limit
worker_max_memory_per_child = _s.worker_max_memory_kb
# A new pool process warms up (workers.tasks: reference store, matplotlib) before it reports
# ready; on a busy host that can take longer than Celery's default 4 s wait for it.
worker_proc_alive_timeout = 60.0
# Cold shutdown (SIGQUIT; SIGTERM is the warm one): running tasks get this long to finish (Celery
# sleeps all of it while any runs), then are cancelled and their messages given back to the queue.
# An idle worker does not wait at all: with the wait on idle, every SIGQUIT slept the whole
# timeout and `make run`'s Ctrl-C ended in supervisord's SIGKILL. `make run` sets 0
# (deploy/supervisord.conf).
worker_soft_shutdown_timeout = _s.worker_soft_shutdown_seconds
worker_enable_soft_shutdown_on_idle = False
# An unacknowledged task (its worker was killed) is redelivered after this many seconds; it must
# exceed the hard time limit so that a slow task is never run twice at once.
broker_transport_options = {"visibility_timeout": _s.visibility_timeout}
broker_connection_retry_on_startup = True
worker_send_task_events = True
# No `task-sent` event from the web tier: it is a second Redis publish on every upload's critical
# path. Flower still sees every task from the workers' events (received, started, succeeded...);
# jobs still waiting in the queue show as the queue's length, and their rows in Postgres.
task_send_sent_event = False
include = ["workers.tasks"]
broker_connection_timeout = 3
#: Celery beat runs what is periodic and may wait its turn in the queue: the alert feeds' sync
#: (feeds.sync), when CALSERV_ALERT_FEED_URL names any. The sweeper is a process of its own
#: (workers.sweeper): it must never wait behind the backlog it rescues.
beat_schedule = {}
if _s.alert_feed_urls:
    beat_schedule["sync-alert-feeds"] = {
        "task": "calserv.sync_alert_feeds",
        "schedule": float(_s.alert_feed_interval),
        # a late run is pointless once the next one is due
        "options": {"expires": float(_s.alert_feed_interval)},
    }
beat_schedule_filename = str(_s.var_dir / "run" / "celerybeat-schedule")
