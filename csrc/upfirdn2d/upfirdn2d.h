// upfirdn2d: zero-insertion upsampling, padding, FIR filtering and downsampling in one
// pass, shared by the CPU and CUDA kernels.
//
// x is a contiguous (N*C, in_h, in_w) stack of planes, f a contiguous float32 (f_h, f_w)
// filter, y a contiguous (N*C, out_h, out_w) stack. Output pixel (oy, ox) is
//   gain * sum_{fy, fx} up(x)[oy*down_y + fy - pad_y0, ox*down_x + fx - pad_x0] * f~[fy, fx]
// where up(x)[u, v] = x[u / up_y, v / up_x] when both divide exactly and lie inside x,
// else 0, and f~ is f flipped in both axes unless `flip` (true convolution by default).
// Only the taps that land on real (non-inserted, inside) pixels are visited.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define UFD_HD __host__ __device__ __forceinline__
#else
#define UFD_HD inline
#endif

struct Upfirdn2dParams {
    const void* x;
    const float* f;
    void* y;
    int64_t planes;  // N * C
    int in_h, in_w;
    int out_h, out_w;
    int up_x, up_y;
    int down_x, down_y;
    int pad_x0, pad_y0;
    int f_h, f_w;
    bool flip;
    double gain;
};

namespace upfirdn2d_math {

UFD_HD int64_t floor_div(int64_t a, int64_t b) { return (a >= 0) ? a / b : -((-a + b - 1) / b); }
UFD_HD int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// One output pixel of one plane. S is the accumulation type.
template <typename T, typename S>
UFD_HD S pixel(const T* plane, const Upfirdn2dParams& p, int oy, int ox) {
    const int64_t y0 = int64_t(oy) * p.down_y - p.pad_y0;  // up-space row under filter tap 0
    const int64_t x0 = int64_t(ox) * p.down_x - p.pad_x0;
    int64_t iy_lo = ceil_div(y0, p.up_y), iy_hi = floor_div(y0 + p.f_h - 1, p.up_y);
    int64_t ix_lo = ceil_div(x0, p.up_x), ix_hi = floor_div(x0 + p.f_w - 1, p.up_x);
    if (iy_lo < 0) iy_lo = 0;
    if (ix_lo < 0) ix_lo = 0;
    if (iy_hi > p.in_h - 1) iy_hi = p.in_h - 1;
    if (ix_hi > p.in_w - 1) ix_hi = p.in_w - 1;
    S acc = S(0);
    for (int64_t iy = iy_lo; iy <= iy_hi; ++iy) {
        const int64_t fy = iy * p.up_y - y0;
        const int64_t fr = p.flip ? fy : p.f_h - 1 - fy;
        const T* row = plane + iy * p.in_w;
        const float* frow = p.f + fr * p.f_w;
        for (int64_t ix = ix_lo; ix <= ix_hi; ++ix) {
            const int64_t fx = ix * p.up_x - x0;
            const int64_t fc = p.flip ? fx : p.f_w - 1 - fx;
            acc += static_cast<S>(row[ix]) * static_cast<S>(frow[fc]);
        }
    }
    return acc * static_cast<S>(p.gain);
}

}  // namespace upfirdn2d_math

// Launches the CUDA kernel (upfirdn2d_cuda.cu) for element type T (float, double, c10::Half).
template <typename T>
void upfirdn2d_cuda_launch(const Upfirdn2dParams& p, void* stream);
