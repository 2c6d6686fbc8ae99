#!/usr/bin/env python3
"""A mutation fuzzer over every file format normscope reads.

    fuzz_inputs.py BINARY SEED_DIR [WORKDIR]

Seeds (data/fuzz/, made by data/fuzz/make_seeds.py): propagate, Transformer and sweep outputs and a
training log (plot inputs), a checkpoint and its log (train --resume), a sweep progress file
(propagate resuming a sweep). Inputs that once crashed the program (data/fuzz/regressions/, each
named after the target that reads it) are replayed first, with the same verdict. Each case mutates one seed (truncation, byte flips, a zeroed or
repeated block; with h5py: a dataset resized, retyped, deleted or made huge through a chunked
fill of shape (2**31,) or (2**31, 2**31), attributes set to NaN, negative, huge, strings or arrays,
or deleted) and runs the program on it under `timeout 10`. A case fails on a crash (a signal),
a sanitizer report, a hang (timeout), more than one line on stderr, or a status other than
0, 1, 2. NS_FUZZ_SECONDS (default 60) bounds the run, NS_FUZZ_SEED picks the random sequence;
failing inputs are kept in WORKDIR/failures. Exits 1 if any case failed."""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

MODEL = ["--width", "8", "--seq", "4", "--batch", "2", "--threads", "1"]
TRAIN = ["train", "--depth", "2", "--heads", "2", "--vocab", "8", "--steps", "6", "--warmup", "1",
         "--probe-every", "3", "--checkpoint-every", "3"] + MODEL
ARGS = {
    "prop.h5": ["propagate", "--depth", "3", "--seeds", "2"] + MODEL,
    "tf.h5": ["propagate", "--block", "transformer", "--depth", "2", "--heads", "2",
              "--seeds", "1"] + MODEL,
    "sweep.h5": ["propagate", "--depth", "2,3,4", "--seeds", "1"] + MODEL,
    "train.h5": TRAIN,
    "progress": ["propagate", "--depth", "8,12,16,20,24,28", "--width", "48", "--seq", "8",
                 "--batch", "4", "--seeds", "1", "--threads", "1"],
}

# target: (seed file mutated, other seed files copied beside it, command)
TARGETS = {
    "plot_propagate": ("prop.h5", [], ["plot", "prop.h5", "--out", "figs"]),
    "plot_transformer": ("tf.h5", [], ["plot", "tf.h5", "--out", "figs"]),
    "plot_sweep": ("sweep.h5", [], ["plot", "sweep.h5", "--out", "figs"]),
    "plot_log": ("train.h5", [], ["plot", "train.h5", "--out", "figs"]),
    "resume_checkpoint": ("train.h5.ckpt", ["train.h5"], TRAIN + ["--resume", "--out", "train.h5"]),
    "resume_log": ("train.h5", ["train.h5.ckpt"], TRAIN + ["--resume", "--out", "train.h5"]),
    "resume_sweep": ("slow.h5.partial-sweep", [], ARGS["progress"] + ["--out", "slow.h5"]),
}

# ---- mutations -------------------------------------------------------------------------------


def m_truncate(path, rng):
    n = os.path.getsize(path)
    os.truncate(path, rng.randrange(0, max(n, 1)))


def m_flip(path, rng):
    data = bytearray(open(path, "rb").read())
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)
    open(path, "wb").write(data)


def m_block(path, rng):
    data = bytearray(open(path, "rb").read())
    i, k = rng.randrange(len(data)), rng.choice([8, 64, 512])
    if rng.random() < 0.5:
        data[i:i + k] = bytes(len(data[i:i + k]))       # zeroed
    else:
        j = rng.randrange(len(data))
        data[i:i + k] = data[j:j + k][:len(data[i:i + k])]  # another block repeated
    open(path, "wb").write(data)


def objects(f):
    import h5py
    out = []
    f.visititems(lambda name, o: out.append((name, o)))
    return [("/", f)] + out


def datasets(f):
    import h5py
    return [n for n, o in objects(f) if isinstance(o, h5py.Dataset)]


def replace(f, name, **kw):
    attrs = dict(f[name].attrs)
    del f[name]
    d = f.create_dataset(name, **kw)
    for k, v in attrs.items():
        try:
            d.attrs[k] = v
        except Exception:  # an attribute h5py cannot copy (a dimension list)
            pass


def s_resize(f, rng):
    import numpy as np
    name = rng.choice(datasets(f))
    shape = list(f[name].shape) or [1]
    k = rng.randrange(len(shape))
    shape[k] = max(0, shape[k] + rng.choice([-1, 1, 7, -shape[k]]))
    if rng.random() < 0.3:
        shape = shape + [2] if rng.random() < 0.5 else shape[:-1] or [3]
    replace(f, name, data=np.random.default_rng(rng.randrange(1 << 30)).random(shape))


def s_dtype(f, rng):
    import numpy as np
    name = rng.choice(datasets(f))
    shape = f[name].shape
    kind = rng.choice(["i4", "f4", "f8", "u1", "c16", "str", "nan"])
    if kind == "str":
        replace(f, name, data=np.array(["x"] * max(1, int(np.prod(shape))), dtype=object),
                dtype=__import__("h5py").string_dtype())
    elif kind == "nan":
        replace(f, name, data=np.full(shape, np.nan))
    else:
        replace(f, name, data=np.ones(shape, dtype=kind))


def s_huge(f, rng):
    name = rng.choice(datasets(f))
    shape = rng.choice([(2**31,), (2**31, 2**31), (2**61,), (2**31, 2**31, 2**31),
                        (1, 2**40), (2**62, 4)])
    chunk = tuple(min(64, s) for s in shape)
    replace(f, name, shape=shape, dtype="f8", chunks=chunk, fillvalue=1.0)


def s_delete(f, rng):
    objs = objects(f)
    name, o = rng.choice(objs)
    if o.attrs.keys() and (rng.random() < 0.6 or name == "/"):
        del o.attrs[rng.choice(list(o.attrs.keys()))]
    elif name != "/":
        del f[name]


def s_attr(f, rng):
    import numpy as np
    objs = [(n, o) for n, o in objects(f) if o.attrs.keys()]
    name, o = rng.choice(objs)
    key = rng.choice(list(o.attrs.keys()))
    value = rng.choice([np.nan, -1, -5, 1e300, -1e300, np.inf, 2**62, 2**31, 0, 7.5, 1e9,
                        "x", "", np.arange(1000.0), np.array([1.0, 2.0]), np.array(["a", "b"], dtype=object),
                        np.float32(3)])
    del o.attrs[key]
    o.attrs[key] = value


# attributes the readers must check, by name: a NaN step, a negative nwindow, a huge depth...
# (a checkpoint's or progress file's checksum refuses these first)
def s_crafted(f, rng):
    import numpy as np
    picks = {"/": ["step", "nwindow", "rows_steps", "rows_probe", "rows_events", "points",
                   "format_version", "checksum", "schema", "configuration", "signature"],
             "config": ["depth", "seeds", "heads", "experts", "width", "steps", "placement"],
             "train": ["loss_floor", "tokens_per_step"], "sweep": ["points", "parameters"]}
    cands = [(g, k) for g, ks in picks.items() if g == "/" or g in f for k in ks
             if k in (f[g] if g != "/" else f).attrs]
    if not cands:
        return s_attr(f, rng)
    g, k = rng.choice(cands)
    o = f if g == "/" else f[g]
    value = rng.choice([np.nan, -1, -2**31, 2**31, 2**40, 1e300, np.inf, 0.5, "bogus",
                        np.array([3.0, 4.0]), 10**6])
    del o.attrs[k]
    o.attrs[k] = value


BYTE_MUTATIONS = {"truncate": m_truncate, "flip": m_flip, "block": m_block}
H5_MUTATIONS = {"resize": s_resize, "dtype": s_dtype, "huge": s_huge, "delete": s_delete,
                "attr": s_attr, "crafted": s_crafted}


def mutate(path, kind, rng):
    if kind in BYTE_MUTATIONS:
        BYTE_MUTATIONS[kind](path, rng)
        return True
    import h5py
    try:
        with h5py.File(path, "r+") as f:
            H5_MUTATIONS[kind](f, rng)
    except Exception:
        return False  # h5py could not make it: not a case
    return True


# ---- running ---------------------------------------------------------------------------------


def verdict(rc, err):
    lines = [l for l in err.splitlines() if l.strip()]
    if rc == 124 or rc == 137:
        return "hang (timeout 10 s)"
    if rc < 0 or rc >= 128:
        return "crash (status %d)" % rc
    if "Sanitizer" in err or "runtime error:" in err:
        return "sanitizer report"
    if rc not in (0, 1, 2):
        return "status %d" % rc
    if len(lines) > 1:
        return "%d lines on stderr" % len(lines)
    return None


def run_case(binary, seeds, work, env, target, source, change=None, keep=None):
    """Runs target on a copy of source (and the target's other inputs from seeds) in a fresh
    directory under work, after change(path) has altered the copy (False: not applicable, the
    case is skipped). Returns (ran, verdict or None, stderr); a failing input is copied to keep."""
    src, extra, cmd = TARGETS[target]
    case = tempfile.mkdtemp(dir=work)
    try:
        path = os.path.join(case, src)
        shutil.copy(source, path)
        for e in extra:
            shutil.copy(os.path.join(seeds, e), os.path.join(case, e))
        if change is not None and not change(path):
            return False, None, ""
        p = subprocess.run(["timeout", "-k", "2", "10", binary] + cmd, cwd=case,
                           capture_output=True, text=True, env=env)
        bad = verdict(p.returncode, p.stderr)
        if bad and keep:
            os.makedirs(os.path.dirname(keep), exist_ok=True)
            shutil.copy(path, keep)
        return True, bad, p.stderr
    finally:
        shutil.rmtree(case, ignore_errors=True)


def main():
    binary, seeds = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    work = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else tempfile.mkdtemp()
    budget = float(os.environ.get("NS_FUZZ_SECONDS", "60"))
    seed = int(os.environ.get("NS_FUZZ_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print("fuzz_inputs: seed %d, %.0f s" % (seed, budget))
    fails = os.path.join(work, "failures")
    kinds = list(BYTE_MUTATIONS) + list(H5_MUTATIONS)
    plan = [(t, k) for t in TARGETS for k in kinds]
    rng.shuffle(plan)
    tried, failed, t0, i = {}, {}, time.time(), 0
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "detect_leaks=1"))
    # libhdf5's own leaks on damaged files are not ours (tests/lsan.supp); the debug preset sets
    # this, and so does a ctest run by hand without the preset
    env.setdefault("LSAN_OPTIONS", "suppressions=%s:print_suppressions=0" % os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "lsan.supp"))
    # inputs that once crashed the program (data/fuzz/regressions/TARGET_what.ext), replayed first
    # on every run, each as its target reads it
    reg = os.path.join(seeds, "regressions")
    for name in sorted(os.listdir(reg)) if os.path.isdir(reg) else []:
        target = max((t for t in TARGETS if name.startswith(t + "_")), key=len, default=None)
        if target is None:
            sys.exit("fuzz_inputs: regression %s names no target (%s)" % (name, ", ".join(TARGETS)))
        _, bad, err = run_case(binary, seeds, work, env, target, os.path.join(reg, name))
        tried["regression"] = tried.get("regression", 0) + 1
        if bad:
            failed["regression"] = failed.get("regression", 0) + 1
            print("FAIL regression %s: %s\n  stderr: %s" % (name, bad, err.strip()[:600]))
    while time.time() - t0 < budget:
        target, kind = plan[i % len(plan)]
        i += 1
        src, _, cmd = TARGETS[target]
        keep = os.path.join(fails, "%s-%s-%d" % (target, kind, i))
        # one draw from rng per case, applicable or not, so that a case can be regenerated
        change_rng = random.Random(rng.randrange(1 << 62))
        ran, bad, err = run_case(binary, seeds, work, env, target, os.path.join(seeds, src),
                                 lambda path: mutate(path, kind, change_rng), keep)
        if not ran:
            continue
        tried[kind] = tried.get(kind, 0) + 1
        if bad:
            failed[kind] = failed.get(kind, 0) + 1
            print("FAIL %s/%s: %s: %s\n  input kept as %s\n  stderr: %s" % (
                target, kind, bad, " ".join(cmd), keep, err.strip()[:600]))
    total = sum(tried.values())
    print("fuzz_inputs: %d cases in %.0f s; by mutation: %s" % (
        total, time.time() - t0, ", ".join("%s %d (%d failed)" % (k, tried[k], failed.get(k, 0))
                                           for k in sorted(tried))))
    sys.exit(1 if failed or total == 0 else 0)


if __name__ == "__main__":
    main()
