#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one prepared run (for a session lent a GPU machine for
# minutes): the CUDA tests, the compiled kernels against their references, and the generator,
# video and training benchmarks against the published loop, each as JSON, with the logs.
#
#   bash gen_scripts/gpu_checks.sh                 # from the repository root; OUT=dir (default gpu_out)
#   STEPS="bench_generator bench_train" bash gen_scripts/gpu_checks.sh   # only these (a rerun)
#   DEVICE=cpu QUICK=1 bash gen_scripts/gpu_checks.sh   # a smoke run of the same steps on the CPU
#
# It uses the machine's own PyTorch (no install: the repository is put on PYTHONPATH). Each step
# has its own time limit (rc 124 = it ran out), so one that hangs or fails costs only its share;
# the limits add up to 9.5 minutes, inside one 10-minute device call. A summary line per step
# (rc, seconds) goes to stdout and $OUT/summary.txt. Order: the CUDA ops are compiled first
# (first use compiles them with ninja; cached in ~/.cache/next3d on that machine), then `info`.
set -uo pipefail
OUT=${OUT:-gpu_out}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:+--quick}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
NEXT3D=(python3 -c 'import sys; from next3d.cli import main; sys.argv[0] = "next3d"; main()')

STEPS=${STEPS:-build_ops info cuda_tests bench_ops bench_generator bench_video bench_train}

step() {  # step NAME SECONDS COMMAND...   (skipped unless NAME is in $STEPS)
    local name=$1 limit=$2; shift 2
    case " $STEPS " in *" $name "*) ;; *) return 0 ;; esac
    local started=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc in $((SECONDS - started)) s" | tee -a "$OUT/summary.txt"
}

: > "$OUT/summary.txt"
step build_ops 200 python3 -c "
import torch
from torch_utils.ops import bias_act, upfirdn2d
from next3d.render.rasterize import rasterize
x = torch.randn(1, 4, 8, 8, device='$DEVICE')
tri = torch.tensor([[[-0.5, -0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.5, 0.5]]], device='$DEVICE')
rasterize(tri, torch.tensor([[0, 1, 2]], device='$DEVICE'), (8, 8), impl='auto')
bias_act.bias_act(x, torch.zeros(4, device='$DEVICE'), act='lrelu', impl='auto')
upfirdn2d.upsample2d(x, upfirdn2d.setup_filter([1, 3, 3, 1], device='$DEVICE'), impl='auto')
print('ops built on', '$DEVICE')"
step info 60 "${NEXT3D[@]}" info
step cuda_tests 100 python3 -m pytest -q -x -p no:cacheprovider -k cuda tests/torch_utils tests/next3d/render
step bench_ops 40 "${NEXT3D[@]}" bench ops --device "$DEVICE" $QUICK --out "$OUT/bench_ops.json" --force
step bench_generator 80 "${NEXT3D[@]}" bench generator --device "$DEVICE" $QUICK --compare published-loop \
    --preset ffhq512 --out "$OUT/bench_generator.json" --force
step bench_video 40 "${NEXT3D[@]}" bench video --device "$DEVICE" $QUICK --compare published-loop \
    --out "$OUT/bench_video.json" --force
step bench_train 50 "${NEXT3D[@]}" bench train --device "$DEVICE" $QUICK --compare published-loop \
    --preset small --out "$OUT/bench_train.json" --force
echo "logs and JSON in $OUT"
