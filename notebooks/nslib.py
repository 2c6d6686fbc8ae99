"""nslib: the thin layer the normscope notebooks share.

Finds the `normscope` program, runs it (a failure raises with the tool's own message), and reads
its HDF5 files with h5py into plain dicts of numpy arrays. Nothing here computes physics: the
notebooks do that in the open, from the arrays.

    import nslib
    names = [p["name"] for p in nslib.placements()]    # the program's placements, table order
    path = nslib.propagate("first.h5", placement=names[0], depth=32, act="relu")
    run = nslib.load(path)
    run["propagate"]["act_ms"]      # [seeds, depth + 1]
    run["theory"]["act_ms"]         # [depth + 1]  (MLP stacks only; {} otherwise)
    run["config"]["alpha"]
    nslib.colors()[names[0]]        # the colour `normscope plot` draws that placement in

Keyword arguments become options: placement=NAME is --placement NAME (scheme= still works:
--scheme is the program's alias of --placement). The placements are not listed here: they
come from the program (`normscope placements --json`, read once per process).

Training runs (`normscope train`) the same way; `start_train` returns the running process, so a
notebook can read the file while it is written (h5py.File(path, "r", swmr=True)):

    path = nslib.train("run.h5", placement=names[2], depth=8, steps=300)   # waits
    proc, path = nslib.start_train("run.h5", placement=names[0], depth=8)  # returns at once
    nslib.wait(proc)
    run = nslib.load_train(path)
    run["train"]["loss"], run["probe"]["grad_ms"], run["train_attrs"]["loss_floor"]

The binary: $NORMSCOPE if set, else ../build/release/normscope (relative to this file,
which sits beside the notebooks), else `normscope` on PATH. Output files go to
$NORMSCOPE_SCRATCH if set, else notebooks/scratch/ (git-ignored). Runs use all cores with
OMP_WAIT_POLICY=passive unless the environment sets it.
"""

import functools
import json
import os
import pathlib
import shlex
import shutil
import subprocess

import h5py
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
SCHEMA = "normscope/1"


def find_normscope():
    """The path of the normscope program, or FileNotFoundError saying how to get one."""
    env = os.environ.get("NORMSCOPE")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        raise FileNotFoundError(f"NORMSCOPE={env} is not an executable file")
    built = HERE.parent / "build" / "release" / "normscope"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    on_path = shutil.which("normscope")
    if on_path:
        return on_path
    raise FileNotFoundError(
        "normscope not found: set NORMSCOPE=/path/to/normscope, or build it "
        "(cmake --workflow --preset release) so that build/release/normscope exists, "
        "or put normscope on PATH")


def scratch():
    """The directory the notebooks write their HDF5 files to (created if missing)."""
    d = pathlib.Path(os.environ.get("NORMSCOPE_SCRATCH") or HERE / "scratch")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _command(command, out, options):
    """The argument list of `normscope COMMAND --OPTION VALUE ... --out scratch()/out`, the path,
    the command as shown, and the environment to run it in."""
    path = scratch() / out
    args = [find_normscope(), command]
    for key, value in options.items():
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        args += ["--" + key.replace("_", "-"), str(value)]
    args += ["--out", str(path)]
    shown = "normscope " + " ".join(shlex.quote(a) for a in args[1:-2])
    # OpenMP threads that sleep rather than spin while waiting: on a busy laptop (a browser, the
    # kernel, other jobs) spinning threads can make runs several times slower; set it yourself to
    # override
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "passive")
    return args, path, shown, env


@functools.lru_cache(maxsize=None)
def _placements_json():
    """The text `normscope placements --json` prints (run once per process)."""
    args = [find_normscope(), "placements", "--json"]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"normscope failed (exit status {done.returncode}): "
                           f"{done.stderr.strip() or '(no message)'}\n"
                           f"  command: normscope placements --json")
    return done.stdout


def placements():
    """The program's table of placements, in its order: a list of dicts with name, title,
    paper, equation_mlp, equation (Transformer block), alpha_on, default_scale_init,
    final_norm, color and marker (gnuplot point type). A fresh copy on every call."""
    return json.loads(_placements_json())["placements"]


def colors():
    """Placement name -> the colour `normscope plot` draws it in, e.g. colors()[name]."""
    return {p["name"]: p["color"] for p in placements()}


def propagate(out, **options):
    """Run `normscope propagate --OPTION VALUE ... --out scratch()/out` and return the path.

    Option names use _ for - (scale_init="sqrtL"; placement= chooses the placement, and
    scheme=, the program's older name for it, still works); a list or tuple value is a comma
    list, which makes a sweep. Prints the command and the tool's one-line summary. Raises
    RuntimeError with the tool's message and exit status if it fails."""
    args, path, shown, env = _command("propagate", out, options)
    print("$", shown)
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"normscope failed (exit status {done.returncode}): "
                           f"{done.stderr.strip() or '(no message)'}\n  command: {shown}")
    print(" ", done.stdout.strip())
    return path


def start_train(out, **options):
    """Start `normscope train --OPTION VALUE ... --out scratch()/out` in the background and return
    (process, path) at once; finish it with wait(process). Options as for propagate(). A file
    (and checkpoint) left by an earlier run at that path is removed first, so that a reader
    polling for the file never opens the old one."""
    args, path, shown, env = _command("train", out, options)
    for old in (path, path.with_name(path.name + ".ckpt")):
        old.unlink(missing_ok=True)
    print("$", shown)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    proc.shown = shown
    return proc, path


def wait(proc):
    """Wait for a process from start_train and print the tool's summary line. A run that
    diverged (exit status 3) is a result, not an error: its file is complete. Raises
    RuntimeError with the tool's message for any other failure. Returns the exit status."""
    stdout, stderr = proc.communicate()
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"normscope failed (exit status {proc.returncode}): "
                           f"{stderr.strip() or '(no message)'}\n  command: {proc.shown}")
    print(" ", (stdout.strip() or stderr.strip()))
    return proc.returncode


def train(out, **options):
    """Run `normscope train` to the end (start_train, then wait) and return the path."""
    proc, path = start_train(out, **options)
    wait(proc)
    return path


def _value(x):
    """An HDF5 attribute as a plain Python value (str, int, float or list)."""
    if isinstance(x, bytes):
        return x.decode()
    if isinstance(x, np.ndarray):
        return [_value(v) for v in x.tolist()] if x.dtype.kind in "OSU" else x
    if isinstance(x, np.generic):
        return x.item()
    return x


def _dataset(ds):
    """A dataset as a numpy array; variable-length strings (bytes in h5py) as str."""
    if h5py.check_string_dtype(ds.dtype) is not None:
        return np.array(ds.asstr()[()], dtype=object)
    return ds[()]


def _group(g):
    return {k: _dataset(v) for k, v in g.items() if isinstance(v, h5py.Dataset)}


def _attrs(obj):
    return {k: _value(v) for k, v in obj.attrs.items() if k != "DIMENSION_LABELS"}


def _run(g, path):
    run = {"path": str(path), "config": _attrs(g["config"]), "propagate": _group(g["propagate"]),
           "theory": {}, "theory_attrs": {}, "param_names": []}
    if "theory" in g:
        run["theory"] = _group(g["theory"])
        run["theory_attrs"] = _attrs(g["theory"])
    if "param_grad_ms" in g["propagate"]:
        run["param_names"] = _value(g["propagate/param_grad_ms"].attrs["names"])
    run["profile"] = _group(g["profile"]) if "profile" in g else {}  # profiled skip weights
    return run


def load(path):
    """Read a normscope/1 file.

    A single run: {"path", "attrs", "config", "propagate", "theory", "theory_attrs",
    "param_names", "profile"} ("profile": a row's profiled skip weights, else empty). A sweep
    (several points): {"path", "attrs", "runs": [one dict as above per point], "sweep":
    {option: values per point}, "parameters": [swept options], "fits": {column: values per
    series} (empty unless depth took three values or more)}."""
    with h5py.File(path, "r") as f:
        attrs = _attrs(f)
        if attrs.get("schema") != SCHEMA:
            raise ValueError(f"{path}: not a {SCHEMA} file (schema {attrs.get('schema')!r})")
        if "runs" not in f:
            run = _run(f, path)
            run["attrs"] = attrs
            return run
        n = int(f["sweep"].attrs["points"])
        out = {"path": str(path), "attrs": attrs, "runs": [_run(f[f"runs/{i}"], path)
                                                            for i in range(n)],
               "parameters": _value(f["sweep"].attrs["parameters"]),
               "sweep": _group(f["sweep"]), "fits": {}}
        if "fits" in f["sweep"]:
            out["fits"] = _group(f["sweep/fits"])
        return out


def load_train(path):
    """Read a `normscope train` file, complete or still being written (opened as a SWMR reader):
    {"path", "attrs", "config", "train": the per-step columns (step, loss, lr, grad_norm,
    update_ratio, clipped, status), "train_attrs": loss_floor, entropy_rate, ..., "probe": the
    probe records (step, eval_loss, per-layer [records, L+1] and per-block [records, L] arrays),
    "events": step, kind, value, "event_kinds": the names of the kinds}."""
    with h5py.File(path, "r", swmr=True) as f:
        attrs = _attrs(f)
        if attrs.get("schema") != SCHEMA:
            raise ValueError(f"{path}: not a {SCHEMA} file (schema {attrs.get('schema')!r})")
        t = f["train"]
        return {"path": str(path), "attrs": attrs, "config": _attrs(f["config"]),
                "train": _group(t), "train_attrs": _attrs(t), "probe": _group(t["probe"]),
                "events": _group(t["events"]),
                "event_kinds": _value(t["events"].attrs.get("kinds", []))}


# Student's t quantile t_{0.975, df} for the 95% interval of a seed mean (df = seeds - 1)
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086]


def mean_ci(a, axis=0):
    """Mean over seeds (axis 0) and the half-width of its 95% confidence interval (Student's t;
    0 with one seed)."""
    a = np.asarray(a, dtype=float)
    s = a.shape[axis]
    m = a.mean(axis=axis)
    if s < 2:
        return m, np.zeros_like(m)
    t = _T975[s - 2] if s - 2 < len(_T975) else 1.96
    return m, t * a.std(axis=axis, ddof=1) / np.sqrt(s)


def band(ax, x, a, color=None, label=None, marker="o", floor=None, **kw):
    """Draw the seed mean of a [seeds, n] array against x with its shaded 95% interval (cut at
    floor, e.g. 0 for a quantity that cannot be negative)."""
    m, h = mean_ci(a)
    (line,) = ax.plot(x, m, marker=marker, ms=3, color=color, label=label, **kw)
    lo = m - h if floor is None else np.maximum(m - h, floor)
    ax.fill_between(x, lo, m + h, color=line.get_color(), alpha=0.25, lw=0)
    return line
