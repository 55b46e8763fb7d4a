"""The database layer shared by the web tier, the workers, the CLI and the migrations.

`db.models` is the relational model, `db.session` the engines and sessions, `db.job_states` the
job state machine (every change of a job row's state), `db.dispatch` sending jobs to the queue.
Nothing here imports `web` or `workers`.
"""
