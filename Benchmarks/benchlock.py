"""What the benchmarks on a corpus directory share: one at a time, and fresh output each replay.

The benchmarks share DIR/state and DIR/out (and `feedbackd-bench corpus` rewrites DIR/logs): two
at once wipe each other's output mid-run and time each other's CPU. Each takes an exclusive
`flock` on DIR/.bench.lock for its whole run (`feedbackd-bench run`, `replay` and `corpus` take
the same lock), and a second one stops at once, naming the first. The kernel drops the lock when
its process ends, however it ends.
"""

import fcntl
import os
import shutil
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


def set_aside(corpus_dir):
    """Moves the last replay's DIR/state and DIR/out into DIR/set-aside (`clear_set_aside`
    deletes it when the timed runs are done), so each replay writes into fresh directories.

    Not deleted here: ext4 skips inodes freed in the last 60-300 s when it places a new file
    (`recently_deleted`, reading each one's inode block), and the replay creates about 640
    files and directories in the directory group the last one's were just freed from. perf put
    `recently_deleted` and the buffer lookups under it at about 3% of the replay's samples
    (0.2 s of CPU, on the dataset writer's thread) when the previous output had been deleted
    just before, and at none when it had not. DuckDB writes one file, so it did not pay it.
    """
    aside = os.path.join(corpus_dir, "set-aside")
    os.makedirs(aside, exist_ok=True)
    for sub in ("state", "out"):
        path = os.path.join(corpus_dir, sub)
        if os.path.exists(path):
            os.rename(path, os.path.join(aside, f"{sub}-{len(os.listdir(aside))}"))


def clear_set_aside(corpus_dir):
    """Deletes what `set_aside` moved (a replay started within minutes pays for it, see there)."""
    shutil.rmtree(os.path.join(corpus_dir, "set-aside"), ignore_errors=True)
