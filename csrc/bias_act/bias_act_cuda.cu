// CUDA kernel of bias_act (see bias_act.h for the modes). One thread per element,
// grid-stride loop; the math is shared with the CPU kernel (bias_act.h).
#include <cuda_runtime.h>
#include <c10/util/Half.h>

#include "bias_act/bias_act.h"

namespace {

template <typename T> struct Compute { using type = T; };
template <> struct Compute<c10::Half> { using type = float; };

template <typename T, int A>
__global__ void bias_act_kernel(BiasActParams p) {
    using S = typename Compute<T>::type;
    const T* x = static_cast<const T*>(p.x);
    const T* b = static_cast<const T*>(p.b);
    const T* xref = static_cast<const T*>(p.xref);
    const T* yref = static_cast<const T*>(p.yref);
    const T* dy = static_cast<const T*>(p.dy);
    T* out = static_cast<T*>(p.out);
    const S alpha = static_cast<S>(p.alpha), gain = static_cast<S>(p.gain), clamp = static_cast<S>(p.clamp);
    const int64_t stride = int64_t(blockDim.x) * gridDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n; i += stride) {
        const S xv = static_cast<S>(x[i]);
        const S bv = b ? static_cast<S>(b[(i / p.step_b) % p.size_b]) : S(0);
        const S xr = xref ? static_cast<S>(xref[i]) : S(0);
        const S yr = yref ? static_cast<S>(yref[i]) : S(0);
        const S d = dy ? static_cast<S>(dy[i]) : S(0);
        S r;
        if (p.grad == 0) r = bias_act_math::elem<A, 0, S>(xv, bv, xr, yr, d, alpha, gain, clamp);
        else if (p.grad == 1) r = bias_act_math::elem<A, 1, S>(xv, bv, xr, yr, d, alpha, gain, clamp);
        else r = bias_act_math::elem<A, 2, S>(xv, bv, xr, yr, d, alpha, gain, clamp);
        out[i] = static_cast<T>(r);
    }
}

}  // namespace

template <typename T>
void bias_act_cuda_launch(const BiasActParams& p, void* stream) {
    if (p.n == 0) return;
    const int threads = 256;
    const int64_t want = (p.n + threads - 1) / threads;
    const int blocks = static_cast<int>(want < 65535 * 16 ? want : 65535 * 16);  // grid-stride beyond this
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    BIAS_ACT_DISPATCH_ACT(p.act, bias_act_kernel<T, A><<<blocks, threads, 0, s>>>(p));
}

template void bias_act_cuda_launch<float>(const BiasActParams&, void*);
template void bias_act_cuda_launch<double>(const BiasActParams&, void*);
template void bias_act_cuda_launch<c10::Half>(const BiasActParams&, void*);
