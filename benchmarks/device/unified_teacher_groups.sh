# unified_teacher_groups.json on a GPU machine of the device tool (no network, 16 cores, one GPU): 20 seeds (the count
# fixed before the run), fashion-products, the students default (one teacher per vertical) and pair_teachers; each
# seed trains and scores every system in one process, 20 processes at once. Prepared here:
#   python benchmarks/device/prepare_data.py   # .devdata/: the images at 48 px, the unseen list, the manifest
#   .whl/: Python 3.12 wheels of what the machine lacks (pydantic, pydantic-core, pydantic-settings, python-dotenv,
#          annotated-types, typing-inspection, defusedxml, faiss-cpu, pytorch-metric-learning, pandas<3, pytz, tzdata)
# then run `bash benchmarks/device/unified_teacher_groups.sh` there, carrying .devdata and .whl; another catalog or
# seed count: DATASET=synthetic SEEDS=10 (the file keeps the other catalog's block); LIMIT: seconds for all of it.
set -u
DATASET=${DATASET:-fashion-products} SEEDS=${SEEDS:-20} LIMIT=${LIMIT:-470}
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
mkdir -p /work/shared ../shared runs/benchmarks/unified /tmp/logs
[ -e /work/shared/data ] || ln -s "$PWD/.devdata" /work/shared/data  # the unseen list names /work/shared/data paths
[ -e ../shared/data ] || ln -s "$PWD/.devdata" ../shared/data
cp .devdata/fashion-products-ds-unseen.csv runs/benchmarks/unified/
nvidia-smi -L
cd benchmarks
ARGS="--datasets $DATASET --students default,pair_teachers --device cuda --threads 1"
python3 unified.py --seeds 0 $ARGS > /tmp/logs/prepare.log 2>&1  # ingest once, before the seeds read it
python3 - <<'PY'
import pandas as pd
cols = ["product_id", "vertical", "split", "articleType", "baseColour"]
here, there = (pd.read_csv(p, dtype=str)[cols].sort_values("product_id").reset_index(drop=True) for p in
               ("../runs/benchmarks/unified/fashion-products-ds/manifest.csv", "../.devdata/cpu-manifest.csv"))
print("manifest rows", len(here), "same rows, splits and labels as on the CPU machine:", here.equals(there))
PY
for s in $(seq 0 $((SEEDS - 1))); do
  timeout $(( LIMIT - ($(date +%s) - T0) )) python3 unified.py --first-seed "$s" --seeds $((s + 1)) $ARGS \
    > "/tmp/logs/seed-$s.log" 2>&1 &
  sleep 1
done
wait
grep -h "seed [0-9]*:" /tmp/logs/seed-*.log
python3 unified.py --seeds "$SEEDS" $ARGS > /tmp/logs/final.log 2>&1  # every finished seed into the result file
cp ../benchmarks/results/unified_teacher_groups.json "$OUT/"
(cd ../runs/benchmarks/unified && tar czf "$OUT/caches.tgz" seeds-*)
for f in /tmp/logs/*.log; do echo "== $f"; tail -5 "$f"; done > "$OUT/logs.txt"
echo "total $(( $(date +%s) - T0 ))s"
