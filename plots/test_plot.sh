#!/usr/bin/env bash
# test_plot.sh BIN [PYTHON]: `normscope plot` end to end.
#
# Makes tiny propagate files (pre, post, span; a Transformer span-wrapped; a one-seed file; two
# sweeps; copies whose /theory is replaced by a test oracle or removed, with h5py), plots them in
# every format and checks: the images written and reported (one `wrote` line each), PNG/PDF/SVG
# validity (magic bytes, PNG size from IHDR, SVG parses), that `cd DIR && gnuplot NAME.gp`
# reproduces the PNG byte for byte, that every .dat parses and its numbers equal the HDF5 seed
# means, 95% intervals and theory (test_plot_check.py), theory/bound curves exactly where the
# files have them, labels and colours (placement colours; file names when placements repeat;
# sweep points), and failures: bad inputs exit 2 with one line and write nothing; a missing
# gnuplot exits 1 naming the package; a gnuplot that fails mid-write leaves no image.
# Prints only failures and a summary; exits non-zero on any failure.
set -u

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: test_plot.sh /path/to/normscope [python3-with-h5py-and-numpy]" >&2
    exit 2
fi
BIN=$1
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
PY=${2:-${NS_PYTHON:-/usr/bin/python3}}
HERE=$(cd "$(dirname "$0")" && pwd)
CHECK=$HERE/test_plot_check.py
GNUPLOT=$(command -v gnuplot) || { echo "FAIL: gnuplot not on PATH (apt-get install gnuplot-nox)"; exit 1; }

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ns-plot-test.XXXXXX") || exit 2
trap 'rm -rf "$ROOT"' EXIT
cd "$ROOT" || exit 2

nfail=0
ncheck=0
fail() {
    echo "FAIL [$CASE]: $*"
    nfail=$((nfail + 1))
}
check() { ncheck=$((ncheck + 1)); }

SMALL=(--depth 6 --width 32 --seq 8 --batch 2 --seeds 3 --threads 1)
FIGS=(act_ms grad_ms cos_tokens eff_rank cos_layer)

# ---- inputs --------------------------------------------------------------------------------
CASE=propagate
for s in pre post span; do
    "$BIN" propagate --placement "$s" "${SMALL[@]}" --out "$s.h5" >/dev/null || fail "propagate $s"
done
"$BIN" propagate --block transformer --placement span-wrapped --heads 4 "${SMALL[@]}" \
    --out tr.h5 >/dev/null || fail "propagate transformer"
"$BIN" propagate --placement pre --depth 4 --width 16 --seq 4 --batch 1 --seeds 1 --threads 1 \
    --out one_seed.h5 >/dev/null || fail "propagate one seed"
"$BIN" propagate --placement pre,post,span --depth 4,6 --width 32 --seq 8 --batch 2 --seeds 2 \
    --threads 1 --out sweep.h5 >/dev/null || fail "propagate sweep"
"$BIN" propagate --placement pre,post,span "${SMALL[@]}" --out sweep3.h5 >/dev/null ||
    fail "propagate placement sweep"
"$BIN" propagate --block moe --placement pre,post,span --capacity 1.25 "${SMALL[@]}" --out moe.h5 \
    >/dev/null || fail "propagate moe"
"$BIN" propagate --block moe --placement pre --top-k 1 --experts 4 "${SMALL[@]}" \
    --out moe_nocap.h5 >/dev/null || fail "propagate moe without a capacity limit"
# depth sweeps with fits: --scale-init after --depth (series 0, 1 interleaved: stride 2), and
# --placement before it (stride 1); a Transformer one (theory drawn only where the file has it)
D3=(--depth 3,5,8 --width 32 --seq 8 --batch 2 --seeds 3 --threads 1)
"$BIN" propagate --placement pre --scale-init none,sqrtL "${D3[@]}" --out dpre.h5 >/dev/null ||
    fail "propagate depth sweep pre"
"$BIN" propagate --placement post,span "${D3[@]}" --out dps.h5 >/dev/null ||
    fail "propagate depth sweep post,span"
"$BIN" propagate --block transformer --placement span --heads 2 --depth 2,3,4 --width 16 --seq 4 \
    --batch 1 --seeds 2 --threads 1 --out dtr.h5 >/dev/null || fail "propagate depth sweep transformer"
# training runs: three placements; one that diverges (NaN, stops with status 3); one killed
# mid-run (its log keeps the "open for writing" mark and opens only as a SWMR reader)
TRAIN=(--block transformer --depth 3 --width 16 --heads 2 --seq 8 --batch 2 --vocab 8 --steps 30
       --warmup 5 --probe-every 10 --threads 1)
for s in pre post span; do
    "$BIN" train --placement "$s" "${TRAIN[@]}" --out "train_$s.h5" >/dev/null || fail "train $s"
done
"$BIN" train --placement post "${TRAIN[@]}" --lr 1e6 --clip 0 --warmup 1 --probe-every 1 \
    --out train_div.h5 >/dev/null 2>&1
[ $? -eq 3 ] || fail "train: a divergent run should stop with status 3"
"$BIN" train --placement span "${TRAIN[@]}" --steps 100000 --probe-every 5 --out train_killed.h5 \
    >/dev/null 2>&1 &
killed=$!
for _ in $(seq 100); do
    "$PY" -c 'import h5py, sys
with h5py.File(sys.argv[1], "r", swmr=True) as f:
    sys.exit(len(f["train/probe/step"]) < 3)' train_killed.h5 2>/dev/null && break
    sleep 0.1
done
kill -9 "$killed"
wait "$killed" 2>/dev/null
mkdir -p other && cp pre.h5 other/pre.h5
"$PY" "$CHECK" add-theory pre.h5 pre_th.h5 1 || fail "add theory to pre"
"$PY" "$CHECK" add-theory span.h5 span_th.h5 0 || fail "add theory to span"
"$PY" "$CHECK" strip-theory post.h5 post_nt.h5 || fail "strip theory from post"
"$PY" "$CHECK" corrupt-fits dpre.h5 badfits.h5 || fail "scramble /sweep/fits"
"$PY" "$CHECK" mix-series dps.h5 mixed.h5 || fail "mix a series"
[ "$nfail" -eq 0 ] || { echo "test_plot: cannot make the inputs"; exit 1; }

# run_plot DIR ARGS...: runs normscope plot with stdout/stderr in DIR.out/DIR.err, sets $status
run_plot() {
    local dir=$1
    shift
    "$BIN" plot "$@" >"$dir.out" 2>"$dir.err"
    status=$?
}

# expect_ok DIR FIG...: exit 0, nothing on stderr, one `wrote` line per image and no others,
# every image valid, no temporary file left
expect_ok() {
    local dir=$1 formats=$2
    shift 2
    check
    [ "$status" -eq 0 ] || fail "exit $status: $(head -c 300 "$dir.err")"
    [ -s "$dir.err" ] && fail "stderr not empty: $(head -c 300 "$dir.err")"
    local want=$ROOT/$dir.want
    : >"$want"
    for fig in "$@"; do
        for ext in dat gp; do
            [ -s "$dir/$fig.$ext" ] || fail "missing $dir/$fig.$ext"
        done
        for ext in ${formats//,/ }; do
            echo "wrote $dir/$fig.$ext" >>"$want"
        done
    done
    if ! diff <(sort "$want") <(sort "$dir.out") >/dev/null; then
        fail "stdout differs from the expected wrote lines: $(diff <(sort "$want") <(sort "$dir.out") | head -5 | tr '\n' ' ')"
    fi
    [ -z "$(find "$dir" -name '*.partial-*')" ] || fail "temporary files left in $dir"
    "$PY" "$CHECK" images "$dir" "$formats" "$@" || fail "image check"
}

# ---- 1. four placements, every format ---------------------------------------------------------
CASE=all-formats
run_plot out1 pre.h5 post.h5 span.h5 tr.h5 --out out1 --format png,pdf,svg
expect_ok out1 png,pdf,svg "${FIGS[@]}" attn_entropy attn_entropy_head_span-wrapped
"$PY" "$CHECK" data out1 pre.h5 post.h5 span.h5 tr.h5 || fail "data check"
# an MLP-only run draws no attention figure
[ -e out1/attn_entropy_head_pre.png ] && fail "a heatmap for an MLP file"
# labels from /config, placement colours
grep -q 'title "pre (MLP, L=6, α=1)"' out1/act_ms.gp ||
    fail "pre label: $(grep -o 'title "pre[^"]*"' out1/act_ms.gp)"
grep -q 'title "span-wrapped (Transformer, H=4, L=6, α=0.408)"' out1/act_ms.gp ||
    fail "Transformer file label: $(grep -o 'title "span-wrapped[^"]*"' out1/act_ms.gp)"
grep -q '^c0 = "#0072B2"' out1/act_ms.gp && grep -q '^c3 = "#CC79A7"' out1/act_ms.gp ||
    fail "placement colours (Okabe-Ito pre blue, span-wrapped purple)"
# propagate writes /theory for MLP stacks; a Transformer file gets a dashed curve exactly when
# it has one too
grep -q 'using 1:6 with lines lc rgb c0 dt (8,5)' out1/act_ms.gp || fail "no theory from propagate"
# the MLP files hold /theory/act_ms_bound: act_ms draws it dotted; grad_ms has no bound to draw
grep -q 'using 1:7 with lines lc rgb c0 dt 3' out1/act_ms.gp || fail "no bound from propagate"
grep -q 'closed-form bound' out1/grad_ms.gp && fail "a bound in grad_ms, which the files have not"
tr_theory=$("$PY" -c 'import h5py, sys; print(int("theory/act_ms" in h5py.File(sys.argv[1], "r")))' tr.h5)
tr_drawn=$(grep -c 'using 1:6 with lines lc rgb c3' out1/act_ms.gp)
[ "$tr_theory" = "$tr_drawn" ] || fail "Transformer theory in the file: $tr_theory, drawn: $tr_drawn"

# ---- 2. the scripts re-render standalone ---------------------------------------------------
CASE=rerender
check
cp out1/act_ms.png act_ms.first.png
rm out1/act_ms.png
(cd out1 && "$GNUPLOT" act_ms.gp) >gp.log 2>&1 || fail "gnuplot act_ms.gp failed: $(head -c 300 gp.log)"
cmp -s act_ms.first.png out1/act_ms.png || fail "re-rendered act_ms.png differs from the one normscope wrote"
(cd out1 && "$GNUPLOT" -e "fmt='pdf'; out='again.pdf'" cos_layer.gp) >gp.log 2>&1 ||
    fail "gnuplot -e fmt='pdf' failed: $(head -c 300 gp.log)"
"$PY" "$CHECK" images out1 pdf again || fail "re-rendered PDF invalid"
(cd out1 && "$GNUPLOT" -e "fmt='gif'" cos_layer.gp) >gp.log 2>&1 && fail "fmt='gif' accepted by the script"

# ---- 3. theory overlays --------------------------------------------------------------------
CASE=theory
run_plot out2 pre_th.h5 post_nt.h5 span_th.h5 --out out2 --format png
expect_ok out2 png "${FIGS[@]}"
"$PY" "$CHECK" data out2 pre_th.h5 post_nt.h5 span_th.h5 || fail "data check with theory"
check
grep -q 'using 1:6 with lines lc rgb c0 dt (8,5)' out2/act_ms.gp || fail "no dashed theory for pre"
grep -q 'using 1:6 with lines lc rgb c1' out2/act_ms.gp && fail "a theory curve for post, which has none"
grep -q 'using 1:7 with lines lc rgb c2 dt 3' out2/act_ms.gp || fail "no dotted bound for span"
grep -q 'using 1:7 with lines lc rgb c0' out2/act_ms.gp && fail "a bound for pre, which has none"
grep -q 'title "theory (approximate for span)"' out2/act_ms.gp || fail "theory legend entry"
grep -q 'title "closed-form bound"' out2/act_ms.gp || fail "bound legend entry"
grep -q 'using 1:6' out2/eff_rank.gp && fail "a theory curve in eff_rank, which has no theory"

# ---- 4. repeated placement: distinct colours, file-name labels; one seed: no band ------------
CASE=fallback
run_plot out3 pre.h5 other/pre.h5 pre_th.h5 one_seed.h5 --out out3 --format svg
expect_ok out3 svg "${FIGS[@]}"
"$PY" "$CHECK" data out3 pre.h5 other/pre.h5 pre_th.h5 one_seed.h5 || fail "data check (fallback)"
check
for t in 'title "pre.h5 (pre, L=6' 'title "other/pre.h5 (pre, L=6' 'title "pre_th.h5 (pre, L=6' \
    'title "one_seed.h5 (pre, L=4'; do
    grep -qF "$t" out3/act_ms.gp || fail "no label starting $t"
done
[ "$(grep -c '^c[0-9] = ' out3/act_ms.gp)" -eq 4 ] &&
    [ "$(grep '^c[0-9] = ' out3/act_ms.gp | cut -d'"' -f2 | sort -u | wc -l)" -eq 4 ] ||
    fail "four files need four colours"
grep -q 'index 3 using 1:(clip($4)):5 with filledcurves' out3/act_ms.gp && fail "a band for one seed"

# ---- 5. sweeps: one curve per point /runs/<i> -------------------------------------------------
CASE=sweep
run_plot out4 sweep.h5 --out out4 --format png
expect_ok out4 png "${FIGS[@]}"
"$PY" "$CHECK" data out4 sweep.h5 || fail "data check (sweep)"
check
[ "$(grep -c '^c[0-9] = ' out4/act_ms.gp)" -eq 6 ] || fail "six sweep points, six curves"
grep -qF 'title "sweep.h5 run 0 (pre, L=4, α=1)"' out4/act_ms.gp &&
    grep -qF 'title "sweep.h5 run 5 (span, L=6, α=0.408)"' out4/act_ms.gp ||
    fail "sweep labels: $(grep -o 'title "sweep[^"]*"' out4/act_ms.gp | head -2 | tr '\n' ' ')"
CASE=placement-sweep
run_plot out5 sweep3.h5 --out out5 --format png
expect_ok out5 png "${FIGS[@]}"
"$PY" "$CHECK" data out5 sweep3.h5 || fail "data check (placement sweep)"
grep -qF 'title "post (L=6, α=1)"' out5/act_ms.gp && grep -q '^c1 = "#D55E00"' out5/act_ms.gp ||
    fail "a sweep over placements is labelled and coloured by placement"

# ---- 6. mixture of experts: routing figures, expert-load heatmaps on one colour scale ---------
CASE=moe
run_plot out6 moe.h5 --out out6 --format png,svg
expect_ok out6 png,svg "${FIGS[@]}" attn_entropy router_entropy load_cv dropped_frac \
    attn_entropy_head_{pre,post,span} expert_load_{pre,post,span}
"$PY" "$CHECK" data out6 moe.h5 || fail "data check (moe)"
check
grep -q '^c2 = "#009E73"' out6/router_entropy.gp || fail "placement colours in router_entropy"
grep -qF 'title "uniform router (maximum): ln E = 2.08 nats at E=8"' out6/router_entropy.gp ||
    fail "ln E reference in router_entropy"
grep -qF 'set cbtics add ("1/E" 0.125)' out6/expert_load_post.gp || fail "1/E on the colour bar"
[ "$(grep -h '^set cbrange' out6/expert_load_*.gp | sort -u | wc -l)" -eq 1 ] ||
    fail "expert_load heatmaps do not share one colour scale"
grep -qF 'MoE · H=4 · E=8 · top-2 · capacity 1.25' out6/load_cv.gp || fail "MoE traits in the title"
CASE=moe-no-capacity
run_plot out7 moe_nocap.h5 moe.h5 --out out7 --format png
expect_ok out7 png "${FIGS[@]}" attn_entropy router_entropy load_cv dropped_frac \
    attn_entropy_head_{moe_nocap,moe_run0,moe_run1,moe_run2} \
    expert_load_{moe_nocap,moe_run0,moe_run1,moe_run2}
"$PY" "$CHECK" data out7 moe_nocap.h5 moe.h5 || fail "data check (moe without capacity)"
check
grep -q '# file: moe_nocap.h5$' out7/dropped_frac.dat && fail "dropped_frac drawn for a run without a capacity limit"
[ "$(grep -c 'dt 4 lw 1.2 notitle' out7/router_entropy.gp)" -eq 2 ] ||
    fail "two expert counts, two ln E lines"
run_plot out7b moe_nocap.h5 --out out7b --format png
grep -q 'wrote out7b/dropped_frac' out7b.out && fail "a dropped_frac figure with no capacity limit"

# ---- 7. depth sweeps: act_ms[L] and the gradient ratio against depth, fitted slopes -----------
CASE=depth
run_plot out8 dpre.h5 dps.h5 dtr.h5 --out out8 --format png,pdf
expect_ok out8 png,pdf "${FIGS[@]}" attn_entropy attn_entropy_head_dtr_run{0,1,2} \
    depth_act_ms depth_grad_ratio
"$PY" "$CHECK" data out8 dpre.h5 dps.h5 dtr.h5 || fail "data check (depth sweeps)"
check
for t in 'title "pre, scale none, MLP, d=32, T=8, B=2, 3 seeds: slope' \
    'title "pre, scale sqrtL, MLP, d=32' 'title "post, scale none, MLP, d=32' \
    'title "span, scale sqrtL, Transformer, H=2, d=16, T=4, B=1, 2 seeds: slope'; do
    grep -qF "$t" out8/depth_act_ms.gp || fail "no series label starting $t"
done
grep -q '^c0 = "#0072B2"' out8/depth_act_ms.gp && grep -q '^c1 = "#E69F00"' out8/depth_act_ms.gp &&
    grep -q '^c2 = "#D55E00"' out8/depth_act_ms.gp && grep -q '^c3 = "#009E73"' out8/depth_act_ms.gp &&
    grep -q '^c4 = "#56B4E9"' out8/depth_act_ms.gp ||
    fail "series colours: pre blue, a second pre orange, post vermillion, span green, a second span sky blue"
grep -q '^set logscale x 2' out8/depth_grad_ratio.gp && grep -q '^set xtics (2, 3, 4, 5, 8)' out8/depth_grad_ratio.gp ||
    fail "log depth axis with a tic per depth: $(grep '^set xtics' out8/depth_grad_ratio.gp)"
# only depth sweeps: the layer figures colour by series and name each series once
[ "$(grep -c 'with linespoints.* title "' out8/act_ms.gp)" -eq 5 ] &&
    grep -qF 'title "pre, scale sqrtL, MLP, d=32, T=8, B=2, 3 seeds (L=3, 5, 8)"' out8/act_ms.gp &&
    [ "$(grep -c 'lc rgb c[0-9]* lw 2 pt 7 ps marker pi 1 notitle' out8/act_ms.gp)" -eq 2 ] ||
    fail "layer figures of depth sweeps: one legend entry per series"
# a file whose depths were swept but not three of them (sweep.h5: 4, 6) has no fits: no figure
run_plot out8b sweep.h5 dtr.h5 --out out8b --format png
grep -c 'data index [0-9] using 1:2 with linespoints' out8b/depth_act_ms.gp | grep -qx 1 ||
    fail "only the Transformer sweep is a depth series"

# ---- training runs: curves, events, heatmaps; a log whose writer was killed ------------------
CASE=train
TFIGS=(train_loss train_grad_norm train_grad_ms_pre train_grad_ms_post train_grad_ms_span)
run_plot out9 train_pre.h5 train_post.h5 train_span.h5 --out out9 --format png,svg
expect_ok out9 png,svg "${TFIGS[@]}"
"$PY" "$CHECK" data out9 train_pre.h5 train_post.h5 train_span.h5 || fail "data check (training)"
grep -q 'title "loss floor of the data: ' out9/train_loss.gp || fail "no loss floor in the legend"
grep -q 'clipping threshold 1' out9/train_grad_norm.gp || fail "no clipping threshold"
grep -q 'NaN/Inf' out9/train_loss.gp && fail "events drawn for runs without any"
CASE=train-divergence
run_plot out10 train_div.h5 train_killed.h5 --out out10 --format png
expect_ok out10 png train_loss train_grad_norm train_grad_ms_post train_grad_ms_span
"$PY" "$CHECK" data out10 train_div.h5 train_killed.h5 || fail "data check (divergence, killed)"
grep -q 'title "NaN/Inf loss or gradient' out10/train_loss.gp &&
    grep -q 'first divergence (step' out10/train_grad_ms_post.gp ||
    fail "divergence events are not marked"
CASE=train-rerender
check
(cd out10 && gnuplot train_loss.gp && gnuplot train_grad_ms_span.gp) 2>out10.rr ||
    fail "a training .gp does not render on its own: $(head -c 300 out10.rr)"

# ---- 8. bad input: exit 2 (usage) or 1 (the input files), one line, nothing written ---------------------------------------
# expect_fail CASE STATUS NEEDLE ARGS...: runs in a fresh directory, output to bad/out. Exactly
# one line on stderr (argp's "Try ... --help" hint after an unknown option only at a terminal).
expect_fail() {
    CASE=$1
    local want=$2 needle=$3
    shift 3
    check
    rm -rf bad && mkdir bad
    (cd bad && "$BIN" plot "$@" >../bad.out 2>../bad.err)
    local st=$?
    [ "$st" -eq "$want" ] || fail "expected exit $want, got $st: $(head -c 300 bad.err)"
    [ -s bad.out ] && fail "stdout not empty: $(head -c 200 bad.out)"
    local lines
    lines=$(wc -l <bad.err)
    [ -n "$(tail -c 1 bad.err)" ] && lines=$((lines + 1))
    [ "$lines" -eq 1 ] || fail "expected one line on stderr, got $lines: $(head -c 300 bad.err)"
    case $(head -n 1 bad.err) in normscope*) ;; *) fail "message does not start with normscope" ;; esac
    grep -qF -- "$needle" bad.err || fail "message does not mention '$needle': $(cat bad.err)"
    [ -z "$(find bad -mindepth 1)" ] || fail "left behind: $(find bad -mindepth 1 | head -5 | tr '\n' ' ')"
}
head -c 3000 "$ROOT/pre.h5" >trunc.h5
echo "not an HDF5 file" >x.h5
"$PY" -c 'import h5py, sys; h5py.File(sys.argv[1], "w").create_dataset("a", data=[1.0])' plain.h5
cp pre.h5 shape.h5
"$PY" -c 'import h5py, sys
with h5py.File(sys.argv[1], "a") as f:
    del f["propagate/act_ms"]
    f["propagate/act_ms"] = [[1.0] * 5] * 3' shape.h5
expect_fail missing-file 1 "nothing.h5" "$ROOT/nothing.h5" --out out
expect_fail truncated 1 "trunc.h5" "$ROOT/trunc.h5" --out out
expect_fail text-file 1 "x.h5" "$ROOT/x.h5" --out out
expect_fail not-normscope 1 "plain.h5" "$ROOT/plain.h5" --out out
expect_fail wrong-shape 1 "/propagate/act_ms has shape [3, 5], expected [3, 7]" "$ROOT/shape.h5" --out out
expect_fail good-then-bad 1 "x.h5" "$ROOT/pre.h5" "$ROOT/x.h5" --out out
expect_fail unknown-format 2 "jpeg" "$ROOT/pre.h5" --out out --format png,jpeg
expect_fail empty-format 2 "format" "$ROOT/pre.h5" --out out --format ""
expect_fail no-files 2 "no input files" --out out
expect_fail no-out 2 "--out" "$ROOT/pre.h5"
expect_fail unknown-option 2 "bogus" "$ROOT/pre.h5" --out out --bogus
cp moe.h5 moeshape.h5
"$PY" -c 'import h5py, sys
with h5py.File(sys.argv[1], "a") as f:
    del f["runs/1/propagate/expert_load"]
    f["runs/1/propagate/expert_load"] = [[[0.125] * 7] * 6] * 3' moeshape.h5
expect_fail expert-load-shape 1 "/propagate/expert_load has shape [3, 6, 7], expected [3, 6, 8]" \
    "$ROOT/moeshape.h5" --out out
expect_fail scrambled-fits 1 "/sweep/fits/first_point does not lay out 2 series" "$ROOT/badfits.h5" --out out
expect_fail mixed-series 1 "differ in width, not only in depth" "$ROOT/pre.h5" "$ROOT/mixed.h5" --out out

# ---- 9. runtime failures: exit 1, one line, no image ----------------------------------------
CASE=no-gnuplot
check
rm -rf bad && mkdir bad
(cd bad && PATH=/nonexistent "$BIN" plot "$ROOT/pre.h5" --out out >../bad.out 2>../bad.err)
st=$?
[ "$st" -eq 1 ] || fail "expected exit 1 without gnuplot, got $st"
[ "$(wc -l <bad.err)" -eq 1 ] && grep -q "apt-get install gnuplot-nox" bad.err ||
    fail "message: $(cat bad.err)"
[ -z "$(find bad -mindepth 1)" ] || fail "left behind without gnuplot: $(find bad -mindepth 1 | head -3)"

# a gnuplot that writes half an image and fails
CASE=gnuplot-fails
check
mkdir -p fakebin
cat >fakebin/gnuplot <<'FAKE'
#!/bin/sh
out=$(sed -n 's/^out = "\(.*\)"$/\1/p')
printf 'half an image' >"$out"
echo '"act_ms.gp" line 1: simulated failure' >&2
exit 1
FAKE
chmod +x fakebin/gnuplot
rm -rf bad && mkdir bad
(cd bad && PATH=$ROOT/fakebin:/usr/bin:/bin "$BIN" plot "$ROOT/pre.h5" --out out >../bad.out 2>../bad.err)
st=$?
[ "$st" -eq 1 ] || fail "expected exit 1 when gnuplot fails, got $st"
[ "$(wc -l <bad.err)" -eq 1 ] && grep -q "simulated failure" bad.err || fail "message: $(cat bad.err)"
[ -z "$(find bad -name '*.png' -o -name '*.partial-*')" ] ||
    fail "left an image or a temporary file: $(find bad -name '*.png' -o -name '*.partial-*')"
[ -s bad.out ] && fail "reported an image: $(cat bad.out)"

if [ "$nfail" -ne 0 ]; then
    echo "test_plot: $nfail failure(s) in $ncheck checks"
    exit 1
fi
echo "test_plot: all $ncheck checks passed"
