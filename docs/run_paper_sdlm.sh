#!/usr/bin/env bash
# experiment=paper_sdlm as the paper trained (online SDLM, 20 passes, ~3 min of one core a pass
# plus the per-pass evaluation), one seed per call: started, or resumed where it stopped
# (ckpt_path=last: after a pass, or mid-pass after SIGTERM/Ctrl+C). While it trains, and when
# it ends, the per-pass training and test error (error_curve.csv, written by the run after each
# pass) is copied to docs/study/paper_sdlm/seed<SEED>/, with metrics.json once the run is done,
# and docs/study/paper_sdlm/error_curve.png is redrawn beside the paper's numbers.
#
#   docs/run_paper_sdlm.sh [SEED] [OUTPUTS]   # default: seed 0, OUTPUTS=outputs/study/paper_sdlm
#   nohup nice -n 5 docs/run_paper_sdlm.sh 0 /abs/outputs/study/paper_sdlm > seed0.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
SEED=${1:-0}
OUTPUTS=${2:-outputs/study/paper_sdlm}
RUN=$OUTPUTS/seed$SEED
DOCS=docs/study/paper_sdlm
PY=${PY:-.venv/bin/python}
export PYTHONPATH="$(pwd)/src${PYTHONPATH:+:$PYTHONPATH}"
export LENET5_DATA_DIR="${LENET5_DATA_DIR:-$(cd ../shared/data 2>/dev/null && pwd || echo data)}"
# One thread: a pass is ~600 steps of 100 online updates, too small to gain from a second core.
export OMP_NUM_THREADS=1

copy() {
    mkdir -p "$DOCS/seed$SEED"
    [ -f "$RUN/error_curve.csv" ] && cp "$RUN/error_curve.csv" "$DOCS/seed$SEED/"
    [ -f "$RUN/metrics.json" ] && cp "$RUN/metrics.json" "$DOCS/seed$SEED/"
    $PY -c "import sys; from pathlib import Path; from lenet5.results.docs_figures import error_curve; \
error_curve(Path(sys.argv[1]), Path(sys.argv[1]) / 'paper_sdlm' / 'error_curve.png', ('paper_sdlm',))" \
        docs/study 2>/dev/null || true
}

if [ -f "$RUN/metrics.json" ]; then
    echo "seed $SEED: finished ($RUN/metrics.json)"; copy; exit 0
fi
resume=()
[ -f "$RUN/checkpoints/last.ckpt" ] && resume=(ckpt_path=last)
$PY train.py experiment=paper_sdlm seed="$SEED" callbacks.progress_bar=null hydra.run.dir="$RUN" "${resume[@]}" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' TERM INT  # the run saves last.ckpt and stops at its next step
while kill -0 $pid 2>/dev/null; do copy; sleep 60 & wait $!; done
wait $pid
status=$?
copy
exit $status
