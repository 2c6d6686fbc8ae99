#!/usr/bin/env python3
"""Regenerates the fuzzing corpus of tests/e2e/fuzz_inputs.py: one small file of every format
normscope reads, made by the program itself at tiny sizes.

    python3 data/fuzz/make_seeds.py build/release/normscope data/fuzz

The arguments that made each file are in fuzz_inputs.py (ARGS), which reruns them on resume."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "e2e"))
from fuzz_inputs import ARGS  # noqa: E402


def main():
    binary, dest = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory() as d:
        for name in ("prop.h5", "tf.h5", "sweep.h5", "train.h5"):
            subprocess.run([binary] + ARGS[name] + ["--out", name], cwd=d, check=True,
                           stdout=subprocess.DEVNULL)
        # a progress file: the slow sweep, interrupted once its first points are kept
        p = subprocess.Popen([binary] + ARGS["progress"] + ["--out", "slow.h5"], cwd=d,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        side = os.path.join(d, "slow.h5.partial-sweep")
        while p.poll() is None and not os.path.exists(side):
            time.sleep(0.01)
        p.send_signal(signal.SIGINT)
        p.wait()
        shutil.copy(side, os.path.join(dest, "slow.h5.partial-sweep"))
        for name in ("prop.h5", "tf.h5", "sweep.h5", "train.h5", "train.h5.ckpt"):
            shutil.copy(os.path.join(d, name), os.path.join(dest, name))


if __name__ == "__main__":
    main()
