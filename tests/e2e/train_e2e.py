#!/usr/bin/env python3
"""train_e2e.py BIN DIR: `normscope train` end to end.

- a short run: the /train layout, status complete, the loss falls toward the entropy floor;
- the log is readable with h5py (SWMR) while the run writes it, and a reader polling the path
  from the start neither breaks the writer nor finds a log half laid out;
- Ctrl-C mid-run, then --resume: the losses are bit-identical to an uninterrupted run;
- kill -9 mid-run leaves the log readable up to the last flush;
- divergence (a huge learning rate): exit 3, status diverged, a NaN event, file readable;
- bad input: exit 2, one line, files intact."""
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
from checklist import check, failures

SMALL = ["--depth", "2", "--width", "32", "--heads", "2", "--seq", "16", "--batch", "4",
         "--threads", "1", "--vocab", "16"]


def run(binary, args, **kw):
    return subprocess.run([binary, "train"] + SMALL + args, capture_output=True, text=True, **kw)


def rows(path):
    try:
        with h5py.File(path, "r", swmr=True) as f:
            return len(f["train/step"])
    except Exception:
        return -1


def main():
    binary, d = sys.argv[1], sys.argv[2]
    os.makedirs(d, exist_ok=True)
    for fn in os.listdir(d):  # a previous run's files, and its corpus directories
        path = os.path.join(d, fn)
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)

    # ---- a short run
    out = os.path.join(d, "short.h5")
    p = run(binary, ["--steps", "120", "--probe-every", "40", "--lr", "1e-2", "--out", out])
    check(p.returncode == 0 and p.stdout.startswith("trained " + out), "short run: %d %r %r"
          % (p.returncode, p.stdout, p.stderr))
    with h5py.File(out, "r") as f:
        t = f["train"]
        check(t["status"][0] == 1, "status %s, expected 1 (complete)" % t["status"][:])
        check(list(t["step"][:]) == list(range(1, 121)), "step column")
        for n in ("loss", "lr", "grad_norm", "update_ratio", "clipped"):
            check(t[n].shape == (120,) and np.all(np.isfinite(t[n][:])), "/train/%s" % n)
        pr = t["probe"]
        check(list(pr["step"][:]) == [40, 80, 120], "probe steps %s" % pr["step"][:])
        for n, w in (("act_ms", 3), ("grad_ms", 3), ("cos_tokens", 3), ("eff_rank", 3),
                     ("cos_layer", 2), ("param_grad_norm", 2), ("update_ratio", 2),
                     ("attn_entropy", 2)):
            check(pr[n].shape == (3, w), "/train/probe/%s shape %s" % (n, pr[n].shape))
        floor, loss = t.attrs["loss_floor"], t["loss"][:]
        check(0 < floor < np.log(16), "loss floor %r" % floor)
        check(loss[-20:].mean() < loss[:20].mean() - 0.1, "the loss did not fall: %r -> %r"
              % (loss[:20].mean(), loss[-20:].mean()))
        check(np.all(pr["eval_loss"][:] > floor - 1e-6), "eval loss below the entropy floor")
        check(f["config"].attrs["block"] == "transformer" and f["config"].attrs["steps"] == 120,
              "config attributes")
        # the lr schedule: linear warmup to the peak at step 20, cosine after
        check(abs(t["lr"][19] - 1e-2) < 1e-12 and t["lr"][0] == 1e-2 / 20, "lr schedule")

    # ---- the uninterrupted reference, and an interrupted run resumed
    ref = os.path.join(d, "ref.h5")
    args = ["--steps", "2000", "--probe-every", "250", "--checkpoint-every", "500"]
    check(run(binary, args + ["--out", ref]).returncode == 0, "reference run")
    inter = os.path.join(d, "inter.h5")
    proc = subprocess.Popen([binary, "train"] + SMALL + args + ["--out", inter],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, t0 = -1, time.time()
    while time.time() - t0 < 60 and proc.poll() is None:
        seen = rows(inter)  # read while it is written (SWMR)
        if seen >= 300:
            break
        time.sleep(0.05)
    check(seen >= 300 or proc.poll() is not None, "the log was not readable while written")
    proc.send_signal(signal.SIGINT)
    so, se = proc.communicate(timeout=120)
    if proc.returncode == 0:
        print("note: the run finished before the interrupt; resume not exercised")
    else:
        check(proc.returncode == 1 and "--resume" in se and len(se.strip().splitlines()) == 1,
              "interrupted run: exit %d, stderr %r" % (proc.returncode, se))
        check(os.path.exists(inter + ".ckpt"), "no checkpoint after Ctrl-C")
        with h5py.File(inter, "r") as f:
            check(f["train/status"][0] == 3, "status after Ctrl-C %s" % f["train/status"][:])
        p = run(binary, args + ["--out", inter, "--resume"])
        check(p.returncode == 0, "resume: %d %r" % (p.returncode, p.stderr))
        with h5py.File(ref, "r") as a, h5py.File(inter, "r") as b:
            for n in ("step", "loss", "grad_norm", "update_ratio"):
                check(np.array_equal(a["train"][n][:], b["train"][n][:]),
                      "resumed %s differs from the uninterrupted run" % n)
            for n in ("step", "eval_loss", "act_ms", "grad_ms"):
                check(np.array_equal(a["train/probe"][n][:], b["train/probe"][n][:]),
                      "resumed probe/%s differs" % n)
            check(b["train/status"][0] == 1, "status after resume")
    # a resume with another configuration, and without a checkpoint
    p = run(binary, args + ["--out", inter, "--resume", "--lr", "0.5"])
    check(p.returncode == 2 and "lr" in p.stderr and len(p.stderr.strip().splitlines()) == 1,
          "mismatched resume: %d %r" % (p.returncode, p.stderr))
    p = run(binary, args + ["--out", os.path.join(d, "none.h5"), "--resume"])
    check(p.returncode == 2 and p.stderr.startswith("normscope"), "resume without a log: %d %r"
          % (p.returncode, p.stderr))
    trunc = os.path.join(d, "trunc.h5")
    with open(ref, "rb") as src, open(trunc, "wb") as dst:
        dst.write(src.read())
    with open(ref + ".ckpt", "rb") as src, open(trunc + ".ckpt", "wb") as dst:
        dst.write(src.read()[:2000])
    p = run(binary, args + ["--out", trunc, "--resume"])
    check(p.returncode == 2 and "ckpt" in p.stderr, "truncated checkpoint: %d %r"
          % (p.returncode, p.stderr))

    # ---- a reader polling the path from the start: the writer never fails on its file lock,
    # and the reader never finds a log half laid out (new logs appear once SWMR has started)
    for attempt in range(3):
        race = os.path.join(d, "race%d.h5" % attempt)
        proc = subprocess.Popen([binary, "train"] + SMALL + ["--steps", "40", "--out", race],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        opened, half = 0, 0
        while proc.poll() is None:
            try:
                with h5py.File(race, "r", swmr=True) as f:
                    opened += 1
                    half += "train/step" not in f
            except (OSError, KeyError):
                pass
        se = proc.communicate()[1]
        check(proc.returncode == 0, "a run with a reader polling its log: exit %d, %r"
              % (proc.returncode, se))
        check(opened > 0 and half == 0, "the reader found the log without its layout %d times"
              " of %d" % (half, opened))
        check(not [n for n in os.listdir(d) if n.startswith("race%d.h5.partial" % attempt)],
              "a temporary log was left behind")

    # ---- kill -9: the log stays readable up to the last flush
    k9 = os.path.join(d, "k9.h5")
    proc = subprocess.Popen([binary, "train"] + SMALL + ["--steps", "5000", "--probe-every", "20",
                                                         "--out", k9],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 60 and rows(k9) < 50:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    with h5py.File(k9, "r", swmr=True) as f:  # a killed writer's log opens as a SWMR reader
        n = len(f["train/probe/step"])
        check(n >= 1 and f["train/status"][0] == 0 and len(f["train/step"]) >= 20 * n,
              "after kill -9: %d probe rows, %d steps" % (n, len(f["train/step"])))
    # ... and --resume continues it from the last checkpoint with no manual step (no h5clear),
    # to the same log as a run never killed (kill times vary with the machine: the checkpoint
    # every 100 steps lands before or after the kill, either way the result must match)
    k9args = SMALL + ["--steps", "400", "--probe-every", "20", "--checkpoint-every", "100"]
    for attempt, rows_at_kill in enumerate((130, 260)):
        k9b = os.path.join(d, "k9resume%d.h5" % attempt)
        proc = subprocess.Popen([binary, "train"] + k9args + ["--out", k9b],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while time.time() - t0 < 60 and rows(k9b) < rows_at_kill and proc.poll() is None:
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        if not os.path.exists(k9b + ".ckpt"):
            continue  # killed before the first checkpoint: nothing to resume
        p = subprocess.run([binary, "train"] + k9args + ["--out", k9b, "--resume"],
                           capture_output=True, text=True)
        check(p.returncode == 0, "resume after kill -9: %d %r" % (p.returncode, p.stderr))
        whole = os.path.join(d, "k9whole.h5")
        if not os.path.exists(whole):
            p = subprocess.run([binary, "train"] + k9args + ["--out", whole],
                               capture_output=True, text=True)
        with h5py.File(whole, "r") as a, h5py.File(k9b, "r") as b:
            for n in ("step", "loss", "grad_norm"):
                check(np.array_equal(a["train"][n][:], b["train"][n][:]),
                      "resumed after kill -9: %s differs from the run never killed" % n)

    # ---- divergence
    dv = os.path.join(d, "div.h5")
    p = run(binary, ["--steps", "200", "--lr", "1e6", "--clip", "0", "--warmup", "1",
                     "--out", dv])
    check(p.returncode == 3 and "diverged" in p.stderr, "divergence: %d %r"
          % (p.returncode, p.stderr))
    with h5py.File(dv, "r") as f:
        ev = f["train/events"]
        check(f["train/status"][0] == 2 and len(ev["kind"]) >= 1 and ev["kind"][0] in (0, 1),
              "divergence events %s" % ev["kind"][:])

    # ---- a mixture of experts trains, with its load-balancing loss, and records expert loads
    moe = os.path.join(d, "moe.h5")
    p = run(binary, ["--block", "moe", "--experts", "4", "--steps", "40", "--warmup", "4",
                     "--probe-every", "20", "--out", moe])
    if check(p.returncode == 0, "moe training: %d %r" % (p.returncode, p.stderr)):
        with h5py.File(moe, "r") as f:
            el = f["train/probe/expert_load"][:]
            check(el.shape == (2, 2, 4) and np.allclose(el.sum(axis=2), 1),
                  "expert_load %s" % (el.shape,))
            check(f["config"].attrs["aux_coef"] == 0.01, "aux_coef not recorded")

    # ---- a per-block schedule trains, names each block's row, and resumes bit for bit
    sargs = ["--depth", "3", "--placement", "post*1,rezero*1,pre", "--rezero-init", "0.5",
             "--steps", "600", "--probe-every", "50", "--checkpoint-every", "100"]
    sref, sint = os.path.join(d, "sched_ref.h5"), os.path.join(d, "sched_int.h5")
    p = run(binary, sargs + ["--out", sref])
    if check(p.returncode == 0, "schedule training: %d %r" % (p.returncode, p.stderr)):
        with h5py.File(sref, "r") as f:
            rows_ = [x.decode() for x in f["config/block_placement"][:]]
            check(rows_ == ["post", "rezero", "pre"] and
                  f["config"].attrs["placement"] == "post*1,rezero*1,pre",
                  "schedule recorded as %r, %r" % (rows_, f["config"].attrs["placement"]))
    proc = subprocess.Popen([binary, "train"] + SMALL + sargs + ["--out", sint],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 60 and proc.poll() is None and rows(sint) < 250:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    if proc.returncode == 0:
        print("note: the schedule run finished before the interrupt; resume not exercised")
    else:
        p = run(binary, sargs + ["--out", sint, "--resume"])
        check(p.returncode == 0, "schedule resume: %d %r" % (p.returncode, p.stderr))
        with h5py.File(sref, "r") as a, h5py.File(sint, "r") as b:
            for n in ("step", "loss", "grad_norm"):
                check(np.array_equal(a["train"][n][:], b["train"][n][:]),
                      "resumed schedule run: %s differs from the uninterrupted run" % n)
    p = run(binary, [x if x != "post*1,rezero*1,pre" else "post*2,pre" for x in sargs]
            + ["--out", sref, "--resume"])
    check(p.returncode == 2 and "placement" in p.stderr, "resume with another schedule: %d %r"
          % (p.returncode, p.stderr))

    # ---- Admin: the profiled skip weights are in the log and the checkpoint, and a resume
    # continues bit for bit (the weights are model state, not redrawn)
    aargs = ["--placement", "admin", "--steps", "600", "--probe-every", "50",
             "--checkpoint-every", "100"]
    aref, aint = os.path.join(d, "admin_ref.h5"), os.path.join(d, "admin_int.h5")
    p = run(binary, aargs + ["--out", aref])
    if check(p.returncode == 0, "admin training: %d %r" % (p.returncode, p.stderr)):
        with h5py.File(aref, "r") as f, h5py.File(aref + ".ckpt", "r") as c:
            w = f["train/skip_weight"][:]
            check(w.shape == (2, 2) and w[0, 0] == 1 and np.all(np.diff(w.ravel()) > 0),
                  "admin skip weights %r: w_1 = 1, then growing" % w)
            check(np.array_equal(c["skip_weights"][:], w.ravel()),
                  "the checkpoint's skip weights differ from the log's")
    proc = subprocess.Popen([binary, "train"] + SMALL + aargs + ["--out", aint],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 60 and proc.poll() is None and rows(aint) < 250:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    if proc.returncode == 0:
        print("note: the admin run finished before the interrupt; resume not exercised")
    else:
        p = run(binary, aargs + ["--out", aint, "--resume"])
        check(p.returncode == 0, "admin resume: %d %r" % (p.returncode, p.stderr))
        with h5py.File(aref, "r") as a, h5py.File(aint, "r") as b:
            for n in ("step", "loss", "grad_norm", "skip_weight"):
                check(np.array_equal(a["train"][n][:], b["train"][n][:]),
                      "resumed admin run: %s differs from the uninterrupted run" % n)

    # ---- bad input
    empty = os.path.join(d, "empty.txt")
    open(empty, "w").close()
    text = os.path.join(d, "text.txt")
    with open(text, "w") as fh:
        fh.write("hello world, " * 200)
    for extra, needle in ((["--data", empty], "empty"), (["--data", text], "--vocab"),
                          (["--data", os.path.join(d, "missing.txt")], "missing"),
                          (["--warmup", "500", "--steps", "10"], "--warmup"),
                          (["--beta2", "1.5"], "beta"), (["--depth", "4,8"], "one value"),
                          (["--heldout", "0.2"], "--heldout")):
        out = os.path.join(d, "bad.h5")
        p = run(binary, extra + ["--out", out])
        check(p.returncode == 2 and needle in p.stderr and len(p.stderr.strip().splitlines()) == 1
              and not os.path.exists(out), "%s: %d %r" % (extra, p.returncode, p.stderr))
    # a corpus directory: missing, empty, a FIFO named in a list (refused, never waited on)
    corpus, hollow, fifo = (os.path.join(d, n) for n in ("corpus", "hollow", "fifo"))
    os.mkdir(corpus), os.mkdir(hollow), os.mkfifo(fifo)
    for extra, needle in ((["--data", os.path.join(d, "nodir")], "No such file"),
                          (["--data", hollow], "empty"),
                          (["--data", text + "," + fifo], "FIFO"),
                          (["--data", text, "--heldout", "1"], "--heldout")):
        out = os.path.join(d, "bad.h5")
        p = run(binary, extra + ["--vocab", "256", "--out", out], timeout=30)
        check(p.returncode == 2 and needle in p.stderr and len(p.stderr.strip().splitlines()) == 1
              and not os.path.exists(out), "%s: %d %r" % (extra, p.returncode, p.stderr))
    # bytes with a large enough vocabulary train; held-out loss also in bits per byte
    for i, n in enumerate((3000, 5000)):
        with open(os.path.join(corpus, "part%d" % i), "w") as fh:
            fh.write(("text %d, " % i) * (n // 8))
    os.symlink("part0", os.path.join(corpus, "part0.u8"))
    with open(os.path.join(corpus, "part0.dat"), "wb") as fh:
        fh.write(b"\0\0\0\2 an index")
    by = os.path.join(d, "bytes.h5")
    p = run(binary, ["--data", corpus + "," + text, "--vocab", "256", "--steps", "5",
                     "--warmup", "1", "--probe-every", "2", "--heldout", "0.2",
                     "--checkpoint-every", "2", "--out", by])
    if check(p.returncode == 0, "byte data: %d %r" % (p.returncode, p.stderr)):
        with h5py.File(by, "r") as f:
            tr, pr = f["train"], f["train/probe"]
            files = [x.decode() if isinstance(x, bytes) else x for x in tr.attrs["data_files"]]
            check([os.path.basename(x) for x in files] == ["part0", "part1", "text.txt"],
                  "data_files %s" % files)
            total = sum(os.path.getsize(x) for x in files)
            check(tr.attrs["train_bytes"] + tr.attrs["heldout_bytes"] == total and
                  abs(tr.attrs["heldout_bytes"] / total - 0.2) < 0.011,
                  "parts %d + %d of %d" % (tr.attrs["train_bytes"], tr.attrs["heldout_bytes"],
                                           total))
            check(f["config"].attrs["heldout"] == 0.2, "heldout not recorded")
            nats, bits = pr["eval_loss"][:], pr["eval_bits"][:]
            check(len(bits) == 3 and np.allclose(bits, nats / np.log(2), rtol=1e-14, atol=0),
                  "eval_bits %s against eval_loss / ln 2 %s" % (bits, nats / np.log(2)))
            check(("eval %.4f = %.4f bits/byte" % (nats[-1], bits[-1])) in p.stdout,
                  "summary %r" % p.stdout)
        # a resume checks the corpus bytes, not only the --data text: one byte changed in
        # part1 (same size, same name) is refused, naming the corpus
        with open(os.path.join(corpus, "part1"), "r+b") as fh:
            fh.seek(100)
            fh.write(b"X")
        p = run(binary, ["--data", corpus + "," + text, "--vocab", "256", "--steps", "5",
                         "--warmup", "1", "--probe-every", "2", "--heldout", "0.2",
                     "--checkpoint-every", "2", "--out", by,
                         "--resume"])
        check(p.returncode == 2 and "corpus_fnv1a" in p.stderr and
              len(p.stderr.strip().splitlines()) == 1,
              "resume on a changed corpus: %d %r" % (p.returncode, p.stderr))
    print("train_e2e: %d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
