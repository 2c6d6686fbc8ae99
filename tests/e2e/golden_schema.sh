#!/usr/bin/env bash
# golden_schema.sh BIN GOLDEN DUMP [--update]: the structure of a `normscope propagate` file, as
# `h5dump -H` (header only: groups, datasets, shapes, types, attribute names and types) prints it,
# against the checked-in GOLDEN (data/golden/propagate_schema.txt); then propagate files of every
# block kind against the schema table (analysis/h5/h5schema.c) as DUMP (the test program
# h5schema_dump) prints it: schema_table.py checks that every dataset is in the table with its
# description, labels, rank and shape, and that every entry for the block kind is in the file.
#
# Normalized before comparing, because they legitimately vary between runs and machines:
#  - the file name on h5dump's first line;
#  - a numeric STRSIZE of the string attributes whose values vary: /command_line, /created_utc,
#    /version, /blas and /config/out (were they fixed-length strings, each would be sized to its
#    value; variable-length strings print STRSIZE H5T_VARIABLE, which is kept as it is).
# Nothing else is touched: dataset names, shapes, types and attribute names all stay. The script
# checks that each of those 5 attributes was found once, with a STRSIZE line, and rewrites nothing
# outside them, so the normalization cannot hide anything else.
#
# With --update, writes GOLDEN from the current program instead of comparing.
# Environment: H5DUMP (default h5dump from PATH), NS_PYTHON (Python 3 with h5py; default python3).
# Prints only failures (with the diff) and a final summary line; exits non-zero on any failure.
set -u

if [ $# -lt 3 ] || [ $# -gt 4 ] || [ ! -x "$1" ] || [ ! -x "$3" ] ||
    { [ $# -eq 4 ] && [ "$4" != --update ]; }; then
    echo "usage: golden_schema.sh /path/to/normscope GOLDEN_FILE /path/to/h5schema_dump" \
        "[--update]" >&2
    exit 2
fi
BIN=$1
GOLDEN=$2
DUMP=$3
UPDATE=${4:-}
PY=${NS_PYTHON:-python3}
H5DUMP=${H5DUMP:-h5dump}
[ -n "$H5DUMP" ] || H5DUMP=h5dump
if ! command -v "$H5DUMP" >/dev/null; then
    echo "FAIL: h5dump not found (apt-get install hdf5-tools)"
    echo "golden_schema: FAILED (no h5dump)"
    exit 1
fi
HERE=$(cd "$(dirname "$0")" && pwd)
REGEN="bash $HERE/golden_schema.sh $BIN $GOLDEN $DUMP --update"

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ns-e2e-golden.XXXXXX") || exit 2
trap 'rm -rf "$ROOT"' EXIT

# S=2, L=5 (L+1=6), P=4 (pre, layernorm): every dimension of the layout has a distinct size
FILE=$ROOT/schema.h5
if ! "$BIN" propagate --placement pre --depth 5 --width 8 --seq 4 --batch 1 --seeds 2 --threads 1 \
    --out "$FILE" >"$ROOT/run.out" 2>"$ROOT/run.err" </dev/null; then
    echo "FAIL: normscope propagate exited non-zero: $(head -c 300 "$ROOT/run.err")"
    echo "golden_schema: FAILED"
    exit 1
fi
if ! "$H5DUMP" -H "$FILE" >"$ROOT/header.txt" 2>"$ROOT/h5dump.err"; then
    echo "FAIL: h5dump -H failed: $(head -c 300 "$ROOT/h5dump.err")"
    echo "golden_schema: FAILED"
    exit 1
fi

# Track the path of the current object and attribute through h5dump's nesting; rewrite only the
# STRSIZE line inside the DATATYPE of the listed attributes.
awk -v varying="/@command_line /@created_utc /@version /@blas /config@out" '
BEGIN {
    n = split(varying, v, " ")
    for (i = 1; i <= n; i++) vary[v[i]] = 1
    depth = 0; path[0] = ""; attr = ""; dup = ""
}
NR == 1 && /^HDF5 "/ { print "HDF5 \"<file>\" {"; depth = 1; next }
{
    line = $0
    if (match(line, /^ *(GROUP|DATASET) "[^"]*" \{ *$/)) {
        name = line; sub(/^ *(GROUP|DATASET) "/, "", name); sub(/" \{ *$/, "", name)
        parent = path[depth - 1]
        if (name == "/") path[depth] = ""
        else path[depth] = parent "/" name
        kind[depth] = "obj"
        depth++
        print line; next
    }
    if (match(line, /^ *ATTRIBUTE "[^"]*" \{ *$/)) {
        name = line; sub(/^ *ATTRIBUTE "/, "", name); sub(/" \{ *$/, "", name)
        owner = path[depth - 1]; if (owner == "") owner = "/"
        attr = owner "@" name
        kind[depth] = "attr"; path[depth] = path[depth - 1]
        depth++
        print line; next
    }
    if (attr != "" && (attr in vary) && line ~ /^ *STRSIZE [^ ]+; *$/) {
        if (seen[attr]++) dup = dup " " attr
        sub(/STRSIZE [0-9]+;/, "STRSIZE <varies>;", line)
        print line; next
    }
    opens = gsub(/\{/, "{", line); closes = gsub(/\}/, "}", line)
    for (i = 0; i < opens; i++) { path[depth] = path[depth - 1]; kind[depth] = "other"; depth++ }
    for (i = 0; i < closes; i++) {
        depth--
        if (kind[depth] == "attr") attr = ""
    }
    print $0
}
END {
    missing = ""
    for (i = 1; i <= n; i++) if (!(v[i] in seen)) missing = missing " " v[i]
    if (missing != "" || dup != "") {
        printf "string attributes not found:%s; found twice:%s\n", missing, dup > "/dev/stderr"
        exit 3
    }
}' "$ROOT/header.txt" >"$ROOT/schema.txt" 2>"$ROOT/awk.err"
st=$?
if [ $st -ne 0 ]; then
    echo "FAIL: normalizing h5dump's header failed (exit $st): $(cat "$ROOT/awk.err")"
    echo "  (each of /command_line /created_utc /version /blas /config/out must be a string"
    echo "   attribute; or the h5dump output format has changed)"
    echo "golden_schema: FAILED"
    exit 1
fi

if [ "$UPDATE" = --update ]; then
    mkdir -p "$(dirname "$GOLDEN")" && cp "$ROOT/schema.txt" "$GOLDEN" || exit 1
    echo "golden_schema: wrote $GOLDEN ($(wc -l <"$GOLDEN") lines)"
    exit 0
fi

if [ ! -f "$GOLDEN" ]; then
    echo "FAIL: golden file $GOLDEN does not exist"
    echo "  to create it: $REGEN"
    echo "golden_schema: FAILED"
    exit 1
fi
if ! diff -u --label "golden: $GOLDEN" --label "current program" "$GOLDEN" "$ROOT/schema.txt" \
    >"$ROOT/diff.txt"; then
    echo "FAIL: the HDF5 layout written by normscope propagate differs from the golden schema:"
    cat "$ROOT/diff.txt"
    echo "  if the change is intended, regenerate the golden file and commit it:"
    echo "  $REGEN"
    echo "golden_schema: FAILED"
    exit 1
fi
# the files against the schema table
if ! "$PY" "$HERE/schema_table.py" "$BIN" "$DUMP"; then
    echo "golden_schema: FAILED (the files and the schema table of analysis/h5/h5schema.c disagree)"
    exit 1
fi
echo "golden_schema: matches $GOLDEN and the schema table"
exit 0
