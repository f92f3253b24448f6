// CUDA kernel of upfirdn2d (see upfirdn2d.h): one thread per output pixel, grid-stride
// over all planes; the filter (a few taps) is read through the read-only cache.
#include <cuda_runtime.h>
#include <c10/util/Half.h>

#include "upfirdn2d/upfirdn2d.h"

namespace {

template <typename T> struct Compute { using type = T; };
template <> struct Compute<c10::Half> { using type = float; };

template <typename T>
__global__ void upfirdn2d_kernel(Upfirdn2dParams p) {
    using S = typename Compute<T>::type;
    const T* x = static_cast<const T*>(p.x);
    T* y = static_cast<T*>(p.y);
    const int64_t out_plane = int64_t(p.out_h) * p.out_w;
    const int64_t in_plane = int64_t(p.in_h) * p.in_w;
    const int64_t total = p.planes * out_plane;
    const int64_t stride = int64_t(blockDim.x) * gridDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int64_t plane = i / out_plane;
        const int64_t rem = i - plane * out_plane;
        const int oy = static_cast<int>(rem / p.out_w);
        const int ox = static_cast<int>(rem - int64_t(oy) * p.out_w);
        y[i] = static_cast<T>(upfirdn2d_math::pixel<T, S>(x + plane * in_plane, p, oy, ox));
    }
}

}  // namespace

template <typename T>
void upfirdn2d_cuda_launch(const Upfirdn2dParams& p, void* stream) {
    const int64_t total = p.planes * int64_t(p.out_h) * p.out_w;
    if (total == 0) return;
    const int threads = 256;
    const int64_t want = (total + threads - 1) / threads;
    const int blocks = static_cast<int>(want < 65535 * 16 ? want : 65535 * 16);
    upfirdn2d_kernel<T><<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(p);
}

template void upfirdn2d_cuda_launch<float>(const Upfirdn2dParams&, void*);
template void upfirdn2d_cuda_launch<double>(const Upfirdn2dParams&, void*);
template void upfirdn2d_cuda_launch<c10::Half>(const Upfirdn2dParams&, void*);
