#!/usr/bin/env python3
"""kill_resume.py BIN DIR: kill -9 at pseudo-random moments, then --resume, gives the log of a
run never killed, bit for bit.

A reference run is timed first; each case then kills `normscope train` with SIGKILL after
delays drawn (seeded: NS_KILL_SEED, default 1) over that duration, up to three times in a row
(a resumed run is killed again), and finally lets it finish. After each kill the run goes on
with --resume when a checkpoint exists, and from the start otherwise (a resume without a
checkpoint must then be refused with one line and exit 2). The finished log must equal the
reference in every dataset and attribute (h5compare.py: bit for bit, apart from the
invocation's own attributes). Checkpoints and evaluations are frequent (evaluations take about
a third of the run), so that kills land in every phase, and three more cases kill the run while
it writes a random checkpoint (its temporary seen in the directory). Where each kill landed is
read from the stopped process's open files (starting, writing a checkpoint, or stepping and
evaluating) and counted. Prints failures and a summary with the counts; exits non-zero on any
failure."""
import os
import random
import shutil
import signal
import subprocess
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h5compare import differences  # noqa: E402
from checklist import check, failures  # noqa: E402

ARGS = ["--depth", "2", "--width", "32", "--heads", "2", "--seq", "16", "--batch", "4",
        "--threads", "1", "--vocab", "16", "--steps", "240", "--probe-every", "10",
        "--eval-batches", "40", "--checkpoint-every", "20", "--out", "run.h5"]
RANDOM_CASES, KILLS_PER_CASE = 8, 3
CHECKPOINT_CASES = 3


def phase(pid):
    """where a stopped process is: writing a checkpoint (its temporary open), starting (its log
    not yet renamed into place: still in its private directory), or running steps and
    evaluations (a third of the time goes to evaluations at these settings)"""
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
        paths = [os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in fds]
    except OSError:
        return "ended"
    if any(".ckpt.partial-" in p for p in paths):
        return "checkpoint"
    if any(".partial-" in p for p in paths) or not any(p.endswith("/run.h5") for p in paths):
        return "startup"
    return "steps or evaluation"


def kill(proc):
    """SIGSTOP, see where it is, SIGKILL: the phase, or None if it had ended"""
    if proc.poll() is not None:
        return None
    proc.send_signal(signal.SIGSTOP)
    where = phase(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return where if proc.returncode == -signal.SIGKILL else None


def wait_for_checkpoint_write(proc, d, nth):
    """polls d until the nth checkpoint temporary has appeared (None: the run ended first)"""
    seen, present = 0, False
    while proc.poll() is None:
        now = any(".ckpt.partial-" in n for n in os.listdir(d))
        if now and not present:
            seen += 1
            if seen == nth:
                return kill(proc)
        present = now
    return None


def run_case(binary, d, next_kill, landed):
    """kills runs at next_kill(proc) until it returns None, then finishes; the finished log"""
    os.makedirs(d)
    out = os.path.join(d, "run.h5")
    nkills = 0
    while True:
        resume = os.path.exists(out + ".ckpt")
        cmd = [binary, "train"] + ARGS + (["--resume"] if resume else [])
        if os.path.exists(out) and not resume:  # killed before the first checkpoint
            p = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, cwd=d)
            check(p.returncode == 2 and "checkpoint" in p.stderr
                  and len(p.stderr.strip().splitlines()) == 1,
                  "%s: --resume without a checkpoint: %d %r" % (d, p.returncode, p.stderr))
        proc = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        where = next_kill(proc, d, nkills)
        if where is None:
            se = proc.communicate()[1].decode()
            check(proc.returncode == 0, "%s: a run ended with %d %r" % (d, proc.returncode, se))
            break
        proc.stderr.close()
        landed[where] = landed.get(where, 0) + 1
        nkills += 1
    diff = differences(os.path.join(os.path.dirname(d), "ref", "run.h5"), out)
    check(not diff, "%s: the resumed log differs from the run never killed: %s"
          % (d, "; ".join(diff[:4])))
    return nkills


def main():
    binary, d = os.path.abspath(sys.argv[1]), sys.argv[2]
    rng = random.Random(int(os.environ.get("NS_KILL_SEED", "1")))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "ref"))
    t0 = time.monotonic()
    p = subprocess.run([binary, "train"] + ARGS, capture_output=True, text=True,
                       cwd=os.path.join(d, "ref"))
    duration = time.monotonic() - t0
    if not check(p.returncode == 0, "reference run: %d %r" % (p.returncode, p.stderr)):
        return 1
    landed, kills = {}, 0

    def at_random(proc, _d, nkills):
        if nkills == KILLS_PER_CASE:
            return None
        time.sleep(rng.uniform(0, duration))
        return kill(proc)

    for case in range(RANDOM_CASES):
        kills += run_case(binary, os.path.join(d, "random%d" % case), at_random, landed)
    for case in range(CHECKPOINT_CASES):  # one kill, at a random checkpoint's write
        nth = rng.randint(1, 12)

        def at_checkpoint(proc, dd, nkills):
            return None if nkills else wait_for_checkpoint_write(proc, dd, nth)

        kills += run_case(binary, os.path.join(d, "checkpoint%d" % case), at_checkpoint, landed)
    print("kill_resume: %d cases, %d kills (%s), %d failed"
          % (RANDOM_CASES + CHECKPOINT_CASES, kills,
             ", ".join("%s %d" % kv for kv in sorted(landed.items())), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
