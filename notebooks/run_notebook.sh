#!/usr/bin/env bash
# Execute one teaching notebook top to bottom against a built normscope and check the result.
#
#   run_notebook.sh NOTEBOOK.ipynb NORMSCOPE_BINARY [OUT_DIR]
#
# OUT_DIR (default: a fresh temporary directory) receives the executed copy, the HDF5 files the
# notebook writes (OUT_DIR/runs) and, when NOTEBOOK_FIGURES=1, every figure as a PNG
# (OUT_DIR/figures). Fails if the committed notebook carries outputs, if any cell raises
# (nbconvert exits non-zero; the notebooks assert their numeric checks), or if a code cell of
# the executed copy has no output. Python: $NS_PYTHON, default /usr/bin/python3.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: run_notebook.sh NOTEBOOK.ipynb NORMSCOPE_BINARY [OUT_DIR]" >&2
    exit 2
fi
nb=$1
bin=$2
py=${NS_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
name=$(basename "$nb" .ipynb)

[ -f "$nb" ] || { echo "FAIL $name: no notebook $nb" >&2; exit 1; }
[ -x "$bin" ] || { echo "FAIL $name: normscope binary $bin is not executable" >&2; exit 1; }
if ! "$py" -c "import nbconvert, nbformat, ipykernel, matplotlib, h5py, numpy" 2>/dev/null; then
    echo "FAIL $name: $py lacks nbconvert/ipykernel/matplotlib/h5py/numpy (Debian: apt-get install" \
         "jupyter-nbconvert python3-ipykernel python3-matplotlib python3-h5py python3-numpy)" >&2
    exit 1
fi

if [ $# -eq 3 ]; then
    out=$3
    mkdir -p "$out"
    rm -rf "${out:?}/runs" "${out:?}/figures" "${out:?}/$name.ipynb"   # a previous run's results
else
    out=$(mktemp -d "${TMPDIR:-/tmp}/notebook_$name.XXXXXX")
fi

# 1. committed without outputs
"$py" "$here/check_notebook.py" --clean "$nb"

# 2. execute: the kernel inherits NORMSCOPE and NORMSCOPE_SCRATCH; no bytecode in the source tree
export NORMSCOPE=$bin
export NORMSCOPE_SCRATCH=$out/runs
export PYTHONDONTWRITEBYTECODE=1
start=$(date +%s)
if ! "$py" -m nbconvert --to notebook --execute --ExecutePreprocessor.timeout=300 \
        --output-dir "$out" --output "$name" "$nb"; then
    echo "FAIL $name: a cell failed to execute (the traceback is above); scratch in $out" >&2
    exit 1
fi
seconds=$(( $(date +%s) - start ))

# 3. every code cell produced output, none raised
figs=()
if [ "${NOTEBOOK_FIGURES:-0}" = 1 ]; then figs=(--figures "$out/figures"); fi
if ! "$py" "$here/check_notebook.py" --executed "${figs[@]}" "$out/$name.ipynb"; then
    echo "FAIL $name: see above; executed copy in $out/$name.ipynb" >&2
    exit 1
fi
echo "PASS $name: executed in ${seconds} s; executed copy in $out/$name.ipynb"
