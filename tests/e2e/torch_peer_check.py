#!/usr/bin/python3
"""torch_peer_check.py NORMSCOPE PEER: analysis/bench/torch_peer.py, bench's PyTorch peer, at toy
sizes, so that it cannot rot. Its statistics come from another program with another RNG, so they
are compared with normscope's over seeds: per layer, the two seed means must agree within 5
combined standard errors (plus 2%). The propagate must also show PreNorm's signature at init,
act_ms growing linearly with depth (a straight-line fit with R^2 >= 0.98), and its output must
have every statistic at the right length; the training step's loss must start near ln V.
Exits 77 (skipped) when this Python has no torch (Debian: python3-torch)."""
import json
import math
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from checklist import check, failures

L, D, H, T, B, SEEDS, V = 8, 64, 2, 32, 4, 8, 64
SHAPE = ["--depth", str(L), "--width", str(D), "--heads", str(H), "--seq", str(T), "--batch",
         str(B)]
STREAM = ["act_ms", "act_var", "cos_tokens", "eff_rank", "grad_ms"]  # L + 1 values
BLOCK = ["cos_layer", "attn_entropy", "attn_out_ms", "mlp_out_ms"]  # L values


def peer(script, *args):
    p = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                       timeout=600)
    if not check(p.returncode == 0, "torch_peer.py %s: exit %d %r"
                 % (" ".join(args), p.returncode, p.stderr[-400:])):
        return None
    return json.loads(p.stdout)


def normscope_runs(binary, tmp):
    out = tmp + "/pre.h5"
    subprocess.run([binary, "propagate", "--block", "transformer", "--placement",
                    "pre", "--seeds", str(SEEDS), "--out", out] + SHAPE, check=True,
                   capture_output=True, timeout=300)
    with h5py.File(out, "r") as f:
        g = f["propagate"]
        return {k: g[k][()] for k in STREAM + BLOCK + ["param_grad_ms"]}


def agree(name, a, b):
    """a, b: [seeds, n]; the seed means per column within 5 combined standard errors + 2%"""
    ma, mb = a.mean(0), b.mean(0)
    se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
    bad = np.abs(ma - mb) > 5 * se + 0.02 * np.abs(mb)
    check(not bad.any(), "%s: PyTorch %s against normscope %s (layers %s)"
          % (name, np.round(ma, 4), np.round(mb, 4), np.flatnonzero(bad)))


def main(binary, script):
    if subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode:
        print("torch_peer_check: skipped, %s has no torch (Debian: python3-torch)" % sys.executable)
        return 77
    r = peer(script, "propagate", "--repeats", str(SEEDS), "--threads", "2", *SHAPE)
    if r:
        runs = r["runs"]
        check(len(runs) == SEEDS and len(r["repeat_seconds"]) == SEEDS and r["seconds"] > 0,
              "propagate: %d runs, seconds %r" % (len(runs), r["seconds"]))
        for k in STREAM + BLOCK:
            check(all(len(u[k]) == (L + 1 if k in STREAM else L) and
                      all(math.isfinite(x) for x in u[k]) for u in runs), k + ": length, finite")
        check(all(np.shape(u["param_grad_ms"]) == (L, 10) for u in runs), "param_grad_ms shape")
        act = np.mean([u["act_ms"] for u in runs], 0)
        slope, icpt = np.polyfit(np.arange(L + 1), act, 1)
        resid = act - slope * np.arange(L + 1) - icpt
        r2 = 1 - np.sum(resid ** 2) / np.sum((act - act.mean()) ** 2)
        check(slope > 0.3 and r2 >= 0.98, "act_ms not linear in depth: %s (R^2 %.3f)" % (act, r2))
        with tempfile.TemporaryDirectory() as tmp:
            ns = normscope_runs(binary, tmp)
        for k in STREAM + BLOCK:
            agree(k, np.array([u[k] for u in runs]), ns[k])
        # per layer, summed over its parameters (their order differs between the programs)
        agree("param_grad_ms summed", np.array([np.sum(u["param_grad_ms"], 1) for u in runs]),
              ns["param_grad_ms"].sum(2))

    r = peer(script, "train", "--repeats", "3", "--vocab", str(V), *SHAPE)
    if r:
        loss = [u["loss"] for u in r["runs"]]
        check(len(loss) == 3 and all(math.log(V) - 0.5 < x < math.log(V) + 1.5 for x in loss),
              "train: losses %r, ln V = %.3f" % (loss, math.log(V)))
    print("torch_peer_check: %s" % ("ok" if not failures else "%d failure(s)" % len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
