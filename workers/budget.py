"""A memory budget per job, enforced while the calibration runs.

Celery's `worker_max_memory_per_child` acts only after a task has finished: one hostile
catalogue could still take every byte of the host on its way. An address-space limit
(RLIMIT_AS) set in the worker child around the calibration makes an allocation beyond the
budget fail at once with MemoryError, which the job reports as its reason; the limit is lifted
again afterwards, so the child, and the next job, carry on.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager

MB = 1024 * 1024


def address_space_bytes() -> int:
    """This process's current virtual size (Linux: /proc/self/statm, in pages)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def memory_budget(megabytes: int) -> Iterator[None]:
    """Allow the code inside at most `megabytes` more address space than the process has now.

    The budget is relative: the child's import-time mappings (numpy, astropy, pyarrow...) are
    hundreds of MB of address space that a job does not use up. 0 means no limit.
    """
    if megabytes <= 0:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = address_space_bytes() + megabytes * MB
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
