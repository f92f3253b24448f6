// CPU kernel and Python binding of upfirdn2d (see upfirdn2d.h).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <vector>

#include "upfirdn2d/upfirdn2d.h"

namespace {

// Which input pixels and filter taps feed output index o along one axis: inputs
// lo .. lo + count - 1, the first with filter tap `tap0`, the next ones `tap_step` apart.
// Identical for every row (or column), so it is computed once per call.
struct AxisTaps {
    std::vector<int64_t> lo, count, tap0;
    int64_t tap_step = 0;
};

AxisTaps axis_taps(int out, int in, int up, int down, int pad0, int f, bool flip) {
    AxisTaps t;
    t.lo.resize(out);
    t.count.resize(out);
    t.tap0.resize(out);
    t.tap_step = flip ? up : -up;
    for (int o = 0; o < out; ++o) {
        const int64_t base = int64_t(o) * down - pad0;  // up-space index under filter tap 0
        int64_t lo = upfirdn2d_math::ceil_div(base, up);
        int64_t hi = upfirdn2d_math::floor_div(base + f - 1, up);
        if (lo < 0) lo = 0;
        if (hi > in - 1) hi = in - 1;
        const int64_t tap = lo * up - base;
        t.lo[o] = lo;
        t.count[o] = hi >= lo ? hi - lo + 1 : 0;
        t.tap0[o] = flip ? tap : f - 1 - tap;
    }
    return t;
}

template <typename T>
void run_cpu(const Upfirdn2dParams& p) {
    const T* x = static_cast<const T*>(p.x);
    T* y = static_cast<T*>(p.y);
    const AxisTaps ty = axis_taps(p.out_h, p.in_h, p.up_y, p.down_y, p.pad_y0, p.f_h, p.flip);
    const AxisTaps tx = axis_taps(p.out_w, p.in_w, p.up_x, p.down_x, p.pad_x0, p.f_w, p.flip);
    std::vector<T> f(p.f, p.f + int64_t(p.f_h) * p.f_w);  // filter in the compute type
    const T gain = static_cast<T>(p.gain);
    const int64_t rows = p.planes * p.out_h;
    const int64_t in_plane = int64_t(p.in_h) * p.in_w;
    // One task = one output row; enough rows per chunk to amortise the scheduling.
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max(1, p.out_w));
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const int64_t plane = r / p.out_h;
            const int oy = static_cast<int>(r % p.out_h);
            const T* xp = x + plane * in_plane + ty.lo[oy] * p.in_w;
            const T* fp = f.data() + ty.tap0[oy] * p.f_w;
            const int64_t ny = ty.count[oy];
            T* yr = y + r * p.out_w;
            for (int ox = 0; ox < p.out_w; ++ox) {
                const int64_t nx = tx.count[ox];
                const T* xc = xp + tx.lo[ox];
                const T* fc = fp + tx.tap0[ox];
                T acc = T(0);
                for (int64_t a = 0; a < ny; ++a) {
                    const T* xrow = xc + a * p.in_w;
                    const T* frow = fc + a * ty.tap_step * p.f_w;
                    for (int64_t k = 0; k < nx; ++k) acc += xrow[k] * frow[k * tx.tap_step];
                }
                yr[ox] = acc * gain;
            }
        }
    });
}

// The CUDA kernel's algorithm (upfirdn2d_math::pixel per output pixel) run on the CPU,
// so the tests check the math the GPU uses even on machines without one.
template <typename T>
void run_pointwise(const Upfirdn2dParams& p) {
    const T* x = static_cast<const T*>(p.x);
    T* y = static_cast<T*>(p.y);
    const int64_t in_plane = int64_t(p.in_h) * p.in_w;
    at::parallel_for(0, p.planes * p.out_h, 64, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const int64_t plane = r / p.out_h;
            const int oy = static_cast<int>(r % p.out_h);
            for (int ox = 0; ox < p.out_w; ++ox) {
                y[r * p.out_w + ox] = upfirdn2d_math::pixel<T, T>(x + plane * in_plane, p, oy, ox);
            }
        }
    });
}

torch::Tensor upfirdn2d_cpu_impl(torch::Tensor x, torch::Tensor f, int64_t up_x, int64_t up_y, int64_t down_x,
                                 int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1,
                                 bool flip, double gain, bool pointwise) {
    TORCH_CHECK(x.device().is_cpu() && f.device().is_cpu(), "upfirdn2d_cpu: x and f must be CPU tensors");
    TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
                "upfirdn2d_cpu: x must be float32 or float64, got ", x.scalar_type());
    TORCH_CHECK(f.scalar_type() == at::kFloat, "upfirdn2d_cpu: f must be float32, got ", f.scalar_type());
    TORCH_CHECK(x.dim() == 4 && x.is_contiguous(), "upfirdn2d_cpu: x must be a contiguous 4-D tensor, got ", x.sizes());
    TORCH_CHECK(f.dim() == 2 && f.is_contiguous() && f.numel() > 0, "upfirdn2d_cpu: f must be a contiguous non-empty 2-D tensor, got ",
                f.sizes());
    TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "upfirdn2d_cpu: up and down must be >= 1");
    TORCH_CHECK(x.size(2) * up_y < (int64_t(1) << 30) && x.size(3) * up_x < (int64_t(1) << 30),
                "upfirdn2d_cpu: image too large");
    const int64_t out_h = (x.size(2) * up_y + pad_y0 + pad_y1 - f.size(0) + down_y) / down_y;
    const int64_t out_w = (x.size(3) * up_x + pad_x0 + pad_x1 - f.size(1) + down_x) / down_x;
    TORCH_CHECK(out_h >= 1 && out_w >= 1, "upfirdn2d_cpu: the output would be empty (", out_h, "x", out_w, ")");

    torch::Tensor y = torch::empty({x.size(0), x.size(1), out_h, out_w}, x.options());
    Upfirdn2dParams p;
    p.x = x.data_ptr();
    p.f = f.data_ptr<float>();
    p.y = y.data_ptr();
    p.planes = x.size(0) * x.size(1);
    p.in_h = static_cast<int>(x.size(2));
    p.in_w = static_cast<int>(x.size(3));
    p.out_h = static_cast<int>(out_h);
    p.out_w = static_cast<int>(out_w);
    p.up_x = static_cast<int>(up_x);
    p.up_y = static_cast<int>(up_y);
    p.down_x = static_cast<int>(down_x);
    p.down_y = static_cast<int>(down_y);
    p.pad_x0 = static_cast<int>(pad_x0);
    p.pad_y0 = static_cast<int>(pad_y0);
    p.f_h = static_cast<int>(f.size(0));
    p.f_w = static_cast<int>(f.size(1));
    p.flip = flip;
    p.gain = gain;
    if (p.planes == 0) return y;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "upfirdn2d_cpu", [&] {
        if (pointwise) run_pointwise<scalar_t>(p);
        else run_cpu<scalar_t>(p);
    });
    return y;
}

torch::Tensor upfirdn2d_cpu(torch::Tensor x, torch::Tensor f, int64_t up_x, int64_t up_y, int64_t down_x,
                            int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1,
                            bool flip, double gain) {
    return upfirdn2d_cpu_impl(x, f, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1, flip, gain, false);
}

torch::Tensor upfirdn2d_cpu_pointwise(torch::Tensor x, torch::Tensor f, int64_t up_x, int64_t up_y, int64_t down_x,
                                      int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1,
                                      bool flip, double gain) {
    return upfirdn2d_cpu_impl(x, f, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1, flip, gain, true);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("upfirdn2d", &upfirdn2d_cpu, "upsample, FIR filter, downsample (CPU)");
    m.def("upfirdn2d_pointwise", &upfirdn2d_cpu_pointwise, "the CUDA kernel's per-pixel algorithm, on the CPU (tests)");
}
