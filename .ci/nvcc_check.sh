#!/usr/bin/env bash
# Compile every csrc/**/*.cu with nvcc -c against the installed torch's headers.
# torch's CPU wheel lacks c10/cuda/impl/cuda_cmake_macros.h; a stub include dir supplies it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stub="$(mktemp -d)"
trap 'rm -rf "$stub"' EXIT
mkdir -p "$stub/c10/cuda/impl"
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' > "$stub/c10/cuda/impl/cuda_cmake_macros.h"
inc=$(python - <<'PY'
import torch.utils.cpp_extension as c, sysconfig
print(" ".join("-I" + p for p in c.include_paths() + [sysconfig.get_paths()["include"]]))
PY
)
status=0
count=0
while IFS= read -r -d '' cu; do
    count=$((count + 1))
    if nvcc -c -std=c++17 -O0 --expt-relaxed-constexpr -I"$stub" -I"$repo/csrc" $inc "$cu" -o "$stub/out.o" 2>"$stub/err.txt"; then
        echo "nvcc ok: ${cu#$repo/}"
    else
        echo "nvcc FAILED: ${cu#$repo/}"; cat "$stub/err.txt"; status=1
    fi
done < <(find "$repo/csrc" -name '*.cu' -print0)
echo "nvcc compile check: $count file(s)"
exit $status
