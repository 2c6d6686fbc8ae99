#!/usr/bin/env python3
"""sweep_resume.py BIN DIR: an interrupted sweep resumes (one process, no MPI needed).

A sweep stopped by SIGINT after some points are done keeps them in OUT.partial-sweep, leaves no
output, and says so in one line (exit 1); rerunning the same command runs only the rest and
writes a file whose every dataset and attribute equals the uninterrupted run's (apart from the
invocation's command line, time stamp and wall time), then removes the progress file. A rerun
with another configuration, or over an unreadable progress file, exits 2 with one line naming
the progress file and touches nothing. After kill -9 the progress file is still whole."""
import glob
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h5compare  # noqa: E402
from checklist import check, failures  # noqa: E402


# a sweep of 18 points of similar cost that takes a few seconds: the first point is kept
# long before the last one runs
SWEEP = ["propagate", "--depth", "16,24,32", "--placement", "pre,post,span",
         "--act", "relu,gelu", "--width", "96", "--seq", "16", "--batch", "4", "--seeds", "2",
         "--threads", "1", "--out", "sweep.h5"]
SIDECAR = "sweep.h5.partial-sweep"


def run(binary, args, cwd):
    p = subprocess.run([binary] + args, capture_output=True, text=True, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def one_line(err, *needles):
    lines = [l for l in err.splitlines() if l.strip()]
    return len(lines) == 1 and lines[0].startswith("normscope") and all(n in lines[0]
                                                                       for n in needles)


def interrupt(binary, cwd, sig):
    """starts the sweep, waits for its progress file, signals it; returns (status, out, err)"""
    p = subprocess.Popen([binary] + SWEEP, cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    side = os.path.join(cwd, SIDECAR)
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None and not os.path.exists(side):
        time.sleep(0.02)
    if p.poll() is None:
        p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    return p.returncode, out, err


def leftovers(d):
    return sorted(os.path.basename(f) for f in glob.glob(os.path.join(d, "*.partial-*"))
                  if not f.endswith(".partial-sweep"))


def main():
    binary, outdir = os.path.abspath(sys.argv[1]), sys.argv[2]
    ref, res, kil = (os.path.join(outdir, d) for d in ("ref", "resume", "kill9"))
    for d in (ref, res, kil):
        os.makedirs(d, exist_ok=True)
        for f in glob.glob(os.path.join(d, "*")):
            os.remove(f)
    t0 = time.time()
    st, so, se = run(binary, SWEEP, ref)
    if not check(st == 0, "uninterrupted sweep exited %d: %s" % (st, se)):
        return 1
    check(not os.path.exists(os.path.join(ref, SIDECAR)), "a finished sweep left its progress file")
    print("uninterrupted sweep: %.1f s" % (time.time() - t0))

    # SIGINT once some points are kept: exit 1, one line, no output, the progress file stays
    st, so, se = interrupt(binary, res, signal.SIGINT)
    check(st == 1, "interrupted sweep exited %d (stderr %r)" % (st, se))
    check(so == "", "interrupted sweep printed %r" % so)
    check(one_line(se, "interrupted", SIDECAR, "resume"), "interrupt message %r" % se)
    check(not os.path.exists(os.path.join(res, "sweep.h5")), "an interrupted sweep left output")
    check(leftovers(res) == [], "files left behind: %s" % leftovers(res))
    side = os.path.join(res, SIDECAR)
    if not check(os.path.exists(side), "no progress file after the interrupt"):
        return 1
    kept = int(se.split(" of ")[0].split()[-1]) if " of " in se else -1
    check(1 <= kept < 18, "points kept %d (the interrupt should come mid-sweep)" % kept)
    before = open(side, "rb").read()

    # another configuration, or an unreadable progress file: exit 2, one line, nothing touched
    other = [a if a != "16,24,32" else "16,24" for a in SWEEP]
    st, so, se = run(binary, other, res)
    check(st == 2 and one_line(se, SIDECAR, "--depth", "16,24,32"),
          "mismatched resume: exit %d, stderr %r" % (st, se))
    check(open(side, "rb").read() == before, "a mismatched resume changed the progress file")
    check(not os.path.exists(os.path.join(res, "sweep.h5")), "a mismatched resume wrote output")

    # the same command resumes: only the rest runs, and the file is the uninterrupted one
    st, so, se = run(binary, SWEEP, res)
    check(st == 0, "resume exited %d: %s" % (st, se))
    check(("%d resumed from %s" % (kept, SIDECAR)) in so, "resume stdout %r" % so)
    check(not os.path.exists(side), "the progress file outlived the finished sweep")
    check(leftovers(res) == [], "files left behind: %s" % leftovers(res))
    diff = h5compare.differences(os.path.join(ref, "sweep.h5"), os.path.join(res, "sweep.h5"))
    check(diff == [], "resumed file differs: %s" % diff[:5])
    check(h5compare.count_datasets(os.path.join(res, "sweep.h5")) > 50, "too few datasets")

    # a corrupt progress file is refused, not overwritten
    with open(os.path.join(res, SIDECAR), "wb") as f:
        f.write(b"not hdf5")
    st, so, se = run(binary, SWEEP, res)
    check(st == 2 and one_line(se, SIDECAR), "corrupt progress file: exit %d, stderr %r" % (st, se))
    os.remove(os.path.join(res, SIDECAR))

    # kill -9 after a save: the progress file is whole and the resume is still exact
    st, so, se = interrupt(binary, kil, signal.SIGKILL)
    check(st == -signal.SIGKILL, "kill -9: status %d" % st)
    if check(os.path.exists(os.path.join(kil, SIDECAR)), "no progress file after kill -9"):
        st, so, se = run(binary, SWEEP, kil)
        check(st == 0 and "resumed" in so, "resume after kill -9: exit %d %r %r" % (st, so, se))
        diff = h5compare.differences(os.path.join(ref, "sweep.h5"),
                                     os.path.join(kil, "sweep.h5"))
        check(diff == [], "file resumed after kill -9 differs: %s" % diff[:5])
    print("sweep_resume: %d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
