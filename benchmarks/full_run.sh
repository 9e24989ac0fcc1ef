#!/usr/bin/env bash
# The full table, one seed at a time so that every pass leaves a complete, merged table:
# baselines + ssc on every dataset, the spatial peers on the spatial sets, scVI on scRNA-seq,
# STAGATE last in a pass (≈15 min for 1.2k cells on the loaded CPU), then GraphST (≈20 min per DLPFC slice on 2 CPU cores) on one slice.
#   bash benchmarks/full_run.sh [SEED ...]      (default: 0 1 2 3 4)
# Runs already stored with a result are skipped (--resume), so an interrupted run continues.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/results}
DOMAINS="dlpfc_151673_maynard2021_hvg5000 dlpfc_151674_maynard2021_hvg5000 starmap_visp_wang2018_1207 osmfish_sscortex_codeluppi2018 baristaseq_visp_sun2021_slice1"
SPATIAL="$DOMAINS merfish_hypothalamus_moffitt2018_animal1"
run() { nice -n 19 "$PY" -m benchmarks.run --out "$OUT" --timeout "${TIMEOUT:-2400}" --no-figures --resume "$@"; }
for seed in "${@:-0 1 2 3 4}"; do
  for s in $seed; do
    run --methods ssc kmeans gmm leiden smooth_gmm --seeds "$s"
    run --datasets $DOMAINS --methods banksy spagcn --seeds "$s"
    run --datasets $SPATIAL --methods cellcharter --seeds "$s"
    run --methods scvi --seeds "$s"
    run --datasets $DOMAINS --methods stagate --seeds "$s"
    nice -n 19 "$PY" -m benchmarks.report --out "$OUT"
  done
done
run --datasets dlpfc_151673_maynard2021_hvg5000 --methods graphst --seeds 0
nice -n 19 "$PY" -m benchmarks.report --out "$OUT"
