#!/usr/bin/env bash
# Model latency: tract as Ketang runs it (its own kernels for the slow operators, see
# models/src/kernels.rs) and tract as shipped, against onnxruntime from PyPI: same models,
# same input, batch 1, one thread each, in the same run; plus the whole face-attendance
# pipeline on a 40-face classroom frame. Prints the ratios to onnxruntime.
#
#   bench/models.sh [RUNS]        (models from models/obtain.sh, in target/models)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}
DIR=${KETANG_MODELS:-target/models}
[ -s "$DIR/face_detection_full_range.onnx" ] || models/obtain.sh "$DIR"
python3 -c 'import onnxruntime, numpy' 2>/dev/null || pip install -q onnxruntime numpy
echo "==> building the tract bench (release)" >&2
cargo build -q --release -p ketang-models --example bench
OUT=$(mktemp)
# Three rounds, each onnxruntime then tract, so that a slower spell of this shared machine
# weighs on both; per model the median of the three round medians is kept.
PER=$(( (RUNS + 2) / 3 ))
for round in 1 2 3; do
  echo "==> round $round: onnxruntime" >&2
  python3 bench/models_ort.py "$DIR" "$PER" >> "$OUT"
  echo "==> round $round: tract" >&2
  target/release/examples/bench "$DIR" "$PER" >> "$OUT"
done
python3 - "$OUT" <<'PY'
import json, sys
from statistics import median
raw = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def merged(runtime):
    out = {}
    for r in raw:
        if r.get("runtime") == runtime:
            out.setdefault(r["model"], []).append(r)
    return {m: {**rs[0], **{k: median(x[k] for x in rs) for k in ("median_ms", "ketang_ms") if k in rs[0]}}
            for m, rs in out.items()}
ort = merged("onnxruntime")
# The last round's figure of each pipeline (one per face embedder).
pipes = {r["pipeline"]: r for r in raw if "pipeline" in r}
rows = list(merged("tract").values()) + list(pipes.values())
print(f"{'model':36} {'ketang ms':>9} {'tract ms':>9} {'ort ms':>8} {'ketang/ort':>10} {'tract/ort':>9}")
for r in rows:
    if r.get("runtime") == "tract":
        o = ort[r["model"]]["median_ms"]
        print(f"{r['model']:36} {r['ketang_ms']:9.2f} {r['median_ms']:9.2f} {o:8.2f} "
              f"{r['ketang_ms'] / o:10.2f} {r['median_ms'] / o:9.2f}")
for r in rows:
    if "pipeline" in r:
        print(f"pipeline: {r['pipeline']}: {r['faces_found']} faces, detect {r['detect_ms']} ms, "
              f"embed+match {r['embed_match_ms']} ms, total {r['total_ms']} ms")
if ort:
    print(f"(onnxruntime {next(iter(ort.values()))['version']})")
PY
rm -f "$OUT"
