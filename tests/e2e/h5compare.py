"""h5compare.py: two normscope files hold the same content: the same groups, datasets (shape,
type and every value, bit for bit, NaNs equal) and attributes, except the root attributes that
record a particular invocation (command_line, created_utc, wall_seconds)."""
import h5py
import numpy as np

INVOCATION = {"command_line", "created_utc", "wall_seconds"}


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return a.tobytes() == b.tobytes()  # bit for bit, NaN included
    return np.array_equal(a, b)


def differences(path_a, path_b):
    """a list of one-line differences (empty: the same content)"""
    out = []
    with h5py.File(path_a, "r") as fa, h5py.File(path_b, "r") as fb:
        def attrs(name, oa, ob):
            ka, kb = set(oa.attrs), set(ob.attrs)
            if name == "/":
                ka, kb = ka - INVOCATION, kb - INVOCATION
            if ka != kb:
                out.append("%s: attributes %s vs %s" % (name, sorted(ka), sorted(kb)))
            for k in sorted(ka & kb):
                if not _same(oa.attrs[k], ob.attrs[k]):
                    out.append("%s: attribute %s differs: %r vs %r"
                               % (name, k, oa.attrs[k], ob.attrs[k]))

        names_a, names_b = [], []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        if sorted(names_a) != sorted(names_b):
            out.append("objects differ: only in %s: %s; only in %s: %s"
                       % (path_a, sorted(set(names_a) - set(names_b))[:8],
                          path_b, sorted(set(names_b) - set(names_a))[:8]))
        attrs("/", fa, fb)
        for n in sorted(set(names_a) & set(names_b)):
            oa, ob = fa[n], fb[n]
            if isinstance(oa, h5py.Dataset) != isinstance(ob, h5py.Dataset):
                out.append("%s: a dataset in one file only" % n)
                continue
            if isinstance(oa, h5py.Dataset) and not _same(oa[()], ob[()]):
                out.append("dataset %s differs" % n)
            attrs(n, oa, ob)
    return out


def count_datasets(path):
    n = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, o: n.append(name) if isinstance(o, h5py.Dataset) else None)
    return len(n)
