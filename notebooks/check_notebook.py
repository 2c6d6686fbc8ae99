#!/usr/bin/env python3
"""Check a notebook file, for run_notebook.sh.

    check_notebook.py --clean NOTEBOOK          the committed form: valid nbformat, no outputs,
                                                no execution counts
    check_notebook.py --executed NOTEBOOK [--figures DIR]
                                                an executed copy: valid nbformat, every code cell
                                                has output, no cell raised; with --figures, every
                                                PNG it shows is written to DIR as cellNN_K.png

Prints one line per problem and exits 1 if there is any.
"""

import argparse
import base64
import os
import sys

import nbformat


def main():
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--clean", action="store_true")
    mode.add_argument("--executed", action="store_true")
    ap.add_argument("--figures")
    ap.add_argument("notebook")
    a = ap.parse_args()

    nb = nbformat.read(a.notebook, as_version=4)
    problems = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:
        problems.append(f"not valid nbformat: {e.message}")
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if not code:
        problems.append("no code cells")
    figures = 0
    for i, c in code:
        if a.clean:
            if c.get("outputs"):
                problems.append(f"cell {i}: has outputs (clear them before committing)")
            if c.get("execution_count") is not None:
                problems.append(f"cell {i}: has an execution count (clear outputs)")
            continue
        if not c.get("outputs"):
            problems.append(f"cell {i}: no output")
        for k, out in enumerate(c.get("outputs", [])):
            if out.get("output_type") == "error":
                problems.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
            png = out.get("data", {}).get("image/png") if "data" in out else None
            if png:
                figures += 1
                if a.figures:
                    os.makedirs(a.figures, exist_ok=True)
                    with open(os.path.join(a.figures, f"cell{i:02d}_{k}.png"), "wb") as f:
                        f.write(base64.b64decode(png))
    for p in problems:
        print(f"{a.notebook}: {p}")
    if not problems:
        what = "clean" if a.clean else f"executed, {len(code)} code cells with output, {figures} figures"
        print(f"{a.notebook}: ok ({what})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
