#!/usr/bin/env python3
"""schema_table.py BIN DUMP: `normscope propagate` files (MLP, Transformer, MoE blocks; PreNorm,
and ResiDual, whose dual stream adds entries marked "dual") against
the schema table (analysis/h5/h5schema.c) as DUMP (h5schema_dump) prints it. Every dataset of a file
is in the table, with the table's description, dimension labels, rank and shape (the symbolic
shape evaluated with /config's seeds, depth, heads and experts, and P the parameter names of
param_grad_ms); every table entry under propagate/ and theory/ for the file's block kind is in
the file. An admin file (profiled skip weights) must also have profile/skip_weight, whose
sublayer dimension J is 1 for MLP blocks and 2 otherwise, and /theory for MLP blocks only. Prints only failures and a summary
line; exits 1 on any failure."""
import os
import subprocess
import sys
import tempfile

import h5py

problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL: " + msg)


def read_table(dump):
    out = subprocess.run([dump], capture_output=True, text=True)
    if out.returncode != 0:
        problem(f"{dump} exited {out.returncode}: {out.stderr.strip()[:300]}")
    table = {}
    for line in out.stdout.splitlines():
        path, typ, rank, shape, labels, blocks, desc = line.split("\t")
        table[path] = dict(type=typ, rank=int(rank), shape=shape[1:-1].split(", "),
                           labels=None if labels == "-" else labels.split(","),
                           blocks=set(filter(None, blocks.split(","))), description=desc)
    return table


def size(symbol, sizes):
    return {"S": sizes["S"], "L+1": sizes["L"] + 1, "L": sizes["L"], "P": sizes.get("P"),
            "H": sizes["H"], "E": sizes["E"], "J": sizes["J"], "1": 1}.get(symbol)


def wanted(e, block, dual):
    """1 if a file of this block kind (and a dual stream or not) holds entry e"""
    return block in e["blocks"] and (dual or "dual" not in e["blocks"])


def check_file(path, block, table, dual, groups=("propagate", "theory")):
    with h5py.File(path, "r") as f:
        cfg = f["config"].attrs
        sizes = {"S": int(cfg["seeds"]), "L": int(cfg["depth"]), "H": int(cfg["heads"]),
                 "E": int(cfg["experts"]), "J": 1 if block == "mlp" else 2}
        if "propagate/param_grad_ms" in f:
            sizes["P"] = len(f["propagate/param_grad_ms"].attrs["names"])
        seen = []

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            seen.append(name)
            e = table.get(name)
            if e is None:
                problem(f"{block}: /{name} is not in the schema table")
                return
            desc = obj.attrs.get("description")
            desc = desc.decode() if isinstance(desc, bytes) else desc
            if desc != e["description"]:
                problem(f"{block}: /{name} description {desc!r}, table {e['description']!r}")
            if obj.ndim != e["rank"]:
                problem(f"{block}: /{name} has rank {obj.ndim}, table {e['rank']}")
                return
            labels = [d.label for d in obj.dims]
            want = e["labels"] if e["labels"] else [""] * e["rank"]
            if labels != want:
                problem(f"{block}: /{name} dimension labels {labels}, table {want}")
            shape = tuple(size(s, sizes) for s in e["shape"])
            if obj.shape != shape:
                problem(f"{block}: /{name} has shape {obj.shape}, table [{', '.join(e['shape'])}]"
                        f" = {shape}")
            if not wanted(e, block, dual):
                problem(f"{block}: /{name} is written, the table has it only for {e['blocks']}")

        f.visititems(visit)
    for name, e in table.items():
        if name.split("/")[0] in groups and wanted(e, block, dual) \
                and name not in seen:
            problem(f"{block}: the table's {name} ({', '.join(sorted(e['blocks']))}) is missing")
    return len(seen)


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    binary, dump = argv
    table = read_table(dump)
    if not table:
        problem("the schema table is empty")
    n = 0
    with tempfile.TemporaryDirectory(prefix="ns-e2e-schema.") as d:
        # ResiDual on MLP blocks: a file with the dual entries and a theory; admin: /profile
        runs = [("mlp", "pre"), ("transformer", "pre"), ("moe", "pre"), ("mlp", "residual"),
                ("mlp", "admin"), ("transformer", "admin"), ("moe", "admin")]
        for block, placement in runs:
            out = os.path.join(d, block + placement + ".h5")
            r = subprocess.run([binary, "propagate", "--block", block, "--placement", placement,
                                "--depth", "3", "--width", "16", "--seq", "4", "--batch", "1",
                                "--seeds", "2", "--threads", "1", "--out", out],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                problem(f"{block}: normscope propagate exited {r.returncode}: {r.stderr[:300]}")
                continue
            # admin files have /profile; the theory covers admin's MLP stacks only
            # (analysis/theory/README.md, section 2.15)
            groups = ("propagate", "theory")
            if placement == "admin":
                groups = ("propagate", "profile") + (("theory",) if block == "mlp" else ())
            n += check_file(out, block, table, placement == "residual", groups)
    if problems:
        print(f"schema_table: FAILED ({len(problems)} problems)")
        return 1
    print(f"schema_table: {n} datasets in {len(runs)} files match the {len(table)}-entry table")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
