#!/usr/bin/env bash
# The CUDA check of a session with a lent GPU, in under 9 minutes on any CUDA machine (results in $OUT):
#   1. the whole pipeline on the GPU through `magan example` (short settings);
#   2. `magan bench speed`: image throughput of simulators and emulator (float32, bf16, bf16 compiled;
#      the target is 2M emulator images/s for 28x28) and both training stages' iterations/s and GPU busy share;
#   3. `magan bench accuracy --profile full` for case study 2 (target: the accuracy in at most 60 s,
#      pretraining included), with per-stage seconds, iterations/s and GPU busy share.
# Run it from the repository root: `OUT=/tmp/gpu bash scripts/gpu_check.sh` (PySide6 is not needed).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH=.
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" > "$OUT/example.txt"
timeout 60 python3 -m magan_gui.cli example --simulator circles --iterations 200 --device cuda \
    --dir "$OUT/example" --quiet >> "$OUT/example.txt" 2>&1; echo "example rc=$?" >> "$OUT/example.txt"
timeout 120 python3 -m magan_gui.cli bench speed --simulator lines,circles --images 10000,1000000 \
    --training-iterations 500 --profile full --device cuda --out "$OUT/speed" > "$OUT/speed.txt" 2>&1
echo "speed rc=$?" >> "$OUT/speed.txt"
timeout 330 python3 -m magan_gui.cli bench accuracy --profile full --simulators circles --seeds 1 \
    --device cuda --out "$OUT/circles" > "$OUT/accuracy-circles.txt" 2>&1
echo "circles rc=$?" >> "$OUT/accuracy-circles.txt"
rm -rf "$OUT/example"
tail -n 12 "$OUT"/*.txt
