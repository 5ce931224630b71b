#!/usr/bin/env bash
# The GPU measurements of issue 17 in one go, for a host with a CUDA GPU (docs/GPU.md).
# Before: torch's CUDA build and the package (pip install torch==2.13.0 && pip install -e ".[test]")
# and the Beauty sequence file (snakemake --cores 2 resources/sequences/beauty.txt).
# Everything lands in $OUT (default results/gpu-check/): nvidia-smi, the smoke profile run on the
# GPU, per model one `elcrec bench` alone and one with $N copies at once, ELCRec with `compile`.
# Stages are chosen with STAGES (default "smoke bench compile"); MODELS, N, EPOCHS and DEVICE
# (default cuda; cpu lets the script itself be tried where no GPU is) override the rest.
set -euo pipefail
OUT=${OUT:-results/gpu-check}
N=${N:-4}
EPOCHS=${EPOCHS:-3}
DEVICE=${DEVICE:-cuda}
STAGES=${STAGES:-"smoke bench compile"}
MODELS=${MODELS:-"pop bprmf gru4rec caser sasrec bert4rec cl4srec iclrec elcrec dcrec maerec iocrec s3rec dssrec"}
SEQUENCES=${SEQUENCES:-resources/sequences/beauty.txt}
mkdir -p "$OUT"

if [ "$DEVICE" = cuda ]; then
  nvidia-smi > "$OUT/nvidia-smi.txt"
  python -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print(torch.cuda.get_device_name())"
fi
[ -f "$SEQUENCES" ] || { echo "gpu_check: $SEQUENCES is missing (snakemake --cores 2 $SEQUENCES)" >&2; exit 1; }

# the model's Beauty settings of config/config.yaml (its first variant), on $DEVICE
settings_of() {
  python - "$1" "$DEVICE" <<'PY'
import json, sys, yaml
from elcrec.settings import resolve, variants_of
config = yaml.safe_load(open("config/config.yaml", encoding="utf-8"))
model, device = sys.argv[1], sys.argv[2]
settings = resolve(config, "beauty", model, variants_of(config, model)[0]) | {"device": device}
print(json.dumps(settings))
PY
}

for stage in $STAGES; do
  case "$stage" in
    smoke)
      echo "== smoke profile on $DEVICE" | tee -a "$OUT/summary.txt"
      start=$(date +%s)
      snakemake --cores all --resources gpu=1 --configfile config/smoke.yaml --directory "$OUT/smoke" \
        --config "training={epochs: 3, patience: 2, device: $DEVICE, threads: 1}" > "$OUT/smoke.log" 2>&1
      echo "smoke profile: $(( $(date +%s) - start )) s" | tee -a "$OUT/summary.txt"
      ;;
    bench)
      for model in $MODELS; do
        settings=$(settings_of "$model")
        echo "== $model, 1 job" | tee -a "$OUT/summary.txt"
        elcrec bench --sequences "$SEQUENCES" --model "$model" --settings "$settings" --epochs "$EPOCHS" \
          > "$OUT/bench-$model-1.txt" 2>&1
        grep "steady state" "$OUT/bench-$model-1.txt" | tee -a "$OUT/summary.txt"
        echo "== $model, $N jobs at once" | tee -a "$OUT/summary.txt"
        elcrec bench --sequences "$SEQUENCES" --model "$model" --settings "$settings" --epochs "$EPOCHS" --jobs "$N" \
          > "$OUT/bench-$model-$N.txt" 2>&1
        grep "jobs at once" "$OUT/bench-$model-$N.txt" | tee -a "$OUT/summary.txt"
      done
      ;;
    compile)
      settings=$(settings_of elcrec | python -c "import json, sys; print(json.dumps(json.load(sys.stdin) | {'compile': True}))")
      echo "== elcrec, compile: true" | tee -a "$OUT/summary.txt"
      elcrec bench --sequences "$SEQUENCES" --model elcrec --settings "$settings" --epochs "$EPOCHS" \
        > "$OUT/bench-elcrec-compile.txt" 2>&1
      grep "steady state" "$OUT/bench-elcrec-compile.txt" | tee -a "$OUT/summary.txt"
      ;;
    *)
      echo "gpu_check: unknown stage $stage (smoke, bench, compile)" >&2
      exit 1
      ;;
  esac
done
echo "gpu_check: done; $OUT/summary.txt"
