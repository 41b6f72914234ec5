#!/usr/bin/env bash
# The order this round ran the study in (make study runs the same jobs): what the closing note
# needs first. Each table's report is copied to docs/study/<table>/ as soon as it is written.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# The data as the Makefile finds it: $LENET5_DATA_DIR, else ../shared/data beside the clone.
export LENET5_DATA_DIR="${LENET5_DATA_DIR:-$(cd ../shared/data 2>/dev/null && pwd || echo data)}"
save() { mkdir -p docs/study/$1 && cp outputs/study/$1/{report.md,report.csv,jobs.csv,report.png,curves.png} docs/study/$1/ 2>/dev/null; }
reproduce() {  # experiment, seeds
    $PY train.py -m experiment=$1 seed=$2 callbacks.progress_bar=null hydra/launcher=joblib \
        hydra.launcher.n_jobs=3 hydra.sweep.dir=outputs/study/$1
    $PY -m lenet5.report outputs/study/$1 && save $1
}
table() { $PY train.py -m study=$1; $PY -m lenet5.report outputs/study/$1 && save $1; }
reproduce paper 0,1,2
reproduce paper_distortions 0,1,2
table classic
for seed in 0 1 2; do PY=$PY docs/run_paper_sdlm.sh $seed; done  # online: ~1 h of one core a seed
reproduce keras 0,1,2
reproduce d2l_fashion 0,1,2
reproduce classic_best 0,1,2
table modern
table activation_head
table activation_init
