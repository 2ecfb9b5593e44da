#!/usr/bin/env bash
# The CUDA check of a session with a lent GPU: the whole pipeline on the GPU through `magan example`,
# then the full-profile accuracy benchmark of both case studies (one seed each), results into $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH=.
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" > "$OUT/example.txt"
timeout 90 python3 -m magan_gui.cli example --simulator circles --iterations 200 --device cuda \
    --dir "$OUT/example" --quiet >> "$OUT/example.txt" 2>&1; echo "example rc=$?" >> "$OUT/example.txt"
for sim in circles lines; do
    timeout 290 python3 -m magan_gui.cli bench accuracy --profile full --simulators "$sim" --seeds 1 \
        --device cuda --out "$OUT/$sim" > "$OUT/accuracy-$sim.txt" 2>&1
    echo "$sim rc=$?" >> "$OUT/accuracy-$sim.txt"
done
rm -rf "$OUT/example"
tail -n 5 "$OUT"/*.txt
