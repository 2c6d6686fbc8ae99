#!/usr/bin/python3
"""bench_quick.py NORMSCOPE: `normscope bench --quick --json` end to end.

Runs the toy-sized workloads and checks the JSON against independent arithmetic: each row's
matrix-product FLOPs against a count written out here from the model's shapes (the second
computation: forward y = xW is 2 N d_in d_out, the backward twice that; attention's T x T
products per sequence and head), GFLOP/s = GFLOP / seconds, ratio = GFLOP/s / sgemm GFLOP/s,
the sgemm ceiling the median of its readings (with one repeat, two: their mean),
the metrics overhead from the two W1 pre rows, the W4 per-block times, W4 run in windows of 4
blocks, every child's peak RSS present and plausible; the PyTorch peer rows (this Python's
torch) or the note that skips them. Bad options exit 2 with one line."""
import json
import subprocess
import sys
from checklist import check, failures


def close(a, b, rel=1e-4):
    return abs(a - b) <= rel * max(abs(a), abs(b))


def flops(block, L, d, T, B, H=0, V=0):
    """matrix-product FLOPs of one forward and backward, counted from the shapes"""
    N, h = T * B, 4 * d
    per_linear = lambda nin, nout: 3 * 2 * N * nin * nout  # forward, dx, dW
    f = L * (per_linear(d, h) + per_linear(h, d))
    if block != "mlp":
        f += L * 4 * per_linear(d, d)
        f += L * B * H * 6 * 2 * T * T * (d // H)  # QK^T, PV and their four backward products
    if V:
        f += per_linear(d, V)
    return f * 1e-9


def has_torch():
    p = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    return p.returncode == 0


def main(binary):
    p = subprocess.run([binary, "bench", "--quick", "--json", "--repeats", "1", "--threads", "2",
                        "--python", sys.executable], capture_output=True, text=True, timeout=240)
    if not check(p.returncode == 0, "bench --quick: exit %d %r" % (p.returncode, p.stderr[-300:])):
        return
    check(p.stderr == "", "stderr not empty when not a terminal: %r" % p.stderr[:200])
    r = json.loads(p.stdout)
    rows = r["workloads"]
    check([w["id"] for w in rows] == ["W1"] * 4 + ["W2", "W3"] + ["W4"] * 3, "workload ids")
    check("kernels" in r["blas"] and r["threads"] == 2 and r["quick"] is True, "header")
    want = [flops("transformer", 4, 64, 32, 2, 2)] * 4 + [
        flops("transformer", 4, 64, 32, 2, 2, V=64), flops("mlp", 4, 64, 32, 2)] + [
        flops("mlp", L, 64, 32, 2) for L in (16, 32, 64)]
    for w, f in zip(rows, want):
        where = w["name"]
        check(close(w["gflop"], f), "%s: %g GFLOP, counted %g" % (where, w["gflop"], f))
        check(w["seconds"] > 0 and close(w["gflops"], w["gflop"] / w["seconds"]), where + " rate")
        check(w["sgemm_gflops"] > 0 and close(w["ratio"], w["gflops"] / w["sgemm_gflops"]),
              where + " ratio")
        low, high = w["sgemm_low_gflops"], w["sgemm_high_gflops"]
        check(0 < low <= high and close(w["sgemm_gflops"], (low + high) / 2),
              "%s: sgemm %r, not the median of readings %r and %r"
              % (where, w["sgemm_gflops"], low, high))
        check(5 < w["peak_rss_mib"] < 2048, "%s: peak RSS %s MiB" % (where, w["peak_rss_mib"]))
        check(w["target"] is None and w["met"] is None, where + ": no targets in --quick")
    check([w["metrics"] for w in rows[:4]] == [True, True, True, False], "W1 metrics flags")
    # an overhead near 0 makes a relative test meaningless: the seconds are printed to 6
    # significant digits, so the ratio is known to about 1e-5 absolute
    # measured on runs with and without metrics in turn, in the row without them
    check(all(w["with_metrics_seconds"] is None for w in rows[:3] + rows[4:]) and
          rows[3]["with_metrics_seconds"] > 0, "with_metrics_seconds only on W1 without metrics")
    overhead = rows[3]["with_metrics_seconds"] / rows[3]["seconds"] - 1
    check(abs(r["metrics_overhead"] - overhead) <= 1e-4,
          "metrics overhead %r, from the rows %r" % (r["metrics_overhead"], overhead))
    check([w["window"] for w in rows[6:]] == [4, 4, 4] and [w["depth"] for w in rows[6:]] ==
          [16, 32, 64], "W4 windows and depths")
    per = r["w4_seconds_per_block"]
    check(len(per) == 3 and all(close(a, w["seconds"] / w["depth"]) for a, w in zip(per, rows[6:])),
          "W4 per-block times")

    # the PyTorch peer rows, right after W1's first row and W2, or a note why not
    peers = r["torch_peer"]
    if has_torch():
        check([q["id"] for q in peers] == ["W1", "W2"] and r["torch_peer_note"] is None and
              r["torch_version"], "peer rows %r, note %r" % (peers, r["torch_peer_note"]))
        for q, w in zip(peers, [rows[0], rows[4]]):
            check(q["torch_seconds"] > 0 and q["normscope_seconds"] == w["seconds"] and
                  close(q["speedup"], q["torch_seconds"] / q["normscope_seconds"]) and
                  q["target"] is None and q["met"] is None, "peer row %r" % q)
    else:
        check(peers == [] and "cannot import torch" in r["torch_peer_note"], "no torch: note")
    p = subprocess.run([binary, "bench", "--quick", "--json", "--repeats", "1", "--only", "W1",
                        "--python", "/nonexistent/python3"], capture_output=True, text=True,
                       timeout=60)
    r = json.loads(p.stdout) if p.returncode == 0 else {}
    check(r.get("torch_peer") == [] and "/nonexistent/python3 cannot import torch" in
          r.get("torch_peer_note", ""), "--python without torch: %r" % p.stdout[-300:])

    # only a subset; bad options
    p = subprocess.run([binary, "bench", "--quick", "--json", "--repeats", "1", "--only", "w3"],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and [w["id"] for w in json.loads(p.stdout)["workloads"]] == ["W3"],
          "--only w3")
    for args, needle in ((["--only", "W9"], "W9"), (["--repeats", "0"], "--repeats"),
                         (["--threads", "x"], "--threads")):
        p = subprocess.run([binary, "bench", "--quick"] + args, capture_output=True, text=True,
                           timeout=60)
        lines = p.stderr.strip().splitlines()
        check(p.returncode == 2 and p.stdout == "" and len(lines) == 1 and needle in lines[0],
              "bench %s: exit %d %r" % (" ".join(args), p.returncode, p.stderr))


if __name__ == "__main__":
    main(sys.argv[1])
    print("bench_quick: %s" % ("ok" if not failures else "%d failure(s)" % len(failures)))
    sys.exit(1 if failures else 0)
