"""One benchmark at a time per corpus directory.

The benchmarks share DIR/state and DIR/out (and `feedbackd-bench corpus` rewrites DIR/logs): two
at once wipe each other's output mid-run and time each other's CPU. Each takes an exclusive
`flock` on DIR/.bench.lock for its whole run (`feedbackd-bench run`, `replay` and `corpus` take
the same lock), and a second one stops at once, naming the first. The kernel drops the lock when
its process ends, however it ends.
"""

import fcntl
import os
import sys


def hold(corpus_dir, name):
    """Takes the lock of corpus_dir for this process, or exits naming who holds it. Keep the
    returned file open (referenced) for as long as the lock is needed."""
    os.makedirs(corpus_dir, exist_ok=True)
    lock = open(os.path.join(corpus_dir, ".bench.lock"), "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "a process that wrote no name"
        sys.exit(f"{name}: {corpus_dir} is in use by another benchmark ({holder}); "
                 "run one at a time: they share its state/ and out/")
    lock.seek(0)
    lock.truncate()
    lock.write(f"{name}, pid {os.getpid()}\n")
    lock.flush()
    return lock
