set -e
cd /work/main
export MAGAN_SLOW_SECONDS=0.02
M=".venv/bin/magan bank --simulator scripts/slow_plugin.py:SlowBlob -n 2000 --chunk-size 50 --quiet --force"
for run in "workers1:--workers 1" "pool2:--workers 2" "dask1:--cluster local:1" "dask2:--cluster local:2"; do
  name=${run%%:*}; opt=${run#*:}
  s=$(date +%s.%N)
  $M -o /tmp/speed-$name.h5 $opt
  e=$(date +%s.%N)
  echo "$name wall $(python3 -c "print(round($e-$s,1))") s"
done
.venv/bin/python - <<'PY'
import h5py, numpy as np
ref = h5py.File("/tmp/speed-workers1.h5")["images"][()]
for n in ("pool2", "dask1", "dask2"):
    print(n, "identical to one worker:", np.array_equal(ref, h5py.File(f"/tmp/speed-{n}.h5")["images"][()]))
PY
