// CPU kernel and Python binding of bias_act (see bias_act.h for the modes).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "bias_act/bias_act.h"

namespace {

template <typename T, int A, int G>
void run_cpu(const BiasActParams& p) {
    const T* x = static_cast<const T*>(p.x);
    const T* b = static_cast<const T*>(p.b);
    const T* xref = static_cast<const T*>(p.xref);
    const T* yref = static_cast<const T*>(p.yref);
    const T* dy = static_cast<const T*>(p.dy);
    T* out = static_cast<T*>(p.out);
    const T alpha = static_cast<T>(p.alpha), gain = static_cast<T>(p.gain), clamp = static_cast<T>(p.clamp);
    const int64_t step = p.step_b;
    if (b && step == 1 && G == 0) {
        // Bias along the last dimension (channels-last activations): rows of size_b
        // elements, each one branch-free loop over the bias vector (vectorisable).
        const int64_t cols = p.size_b, rows = p.n / cols;
        at::parallel_for(0, rows, std::max<int64_t>(1, 32768 / cols), [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) {
                const T* xr = x + r * cols;
                T* yr = out + r * cols;
                for (int64_t c = 0; c < cols; ++c) {
                    yr[c] = bias_act_math::elem<A, 0, T>(xr[c], b[c], T(0), T(0), T(0), alpha, gain, clamp);
                }
            }
        });
        return;
    }
    at::parallel_for(0, p.n, 32768, [&](int64_t begin, int64_t end) {
        int64_t i = begin;
        while (i < end) {
            // Run of elements that share one bias value (no division inside the inner loop).
            const int64_t block = i / step;
            const int64_t stop = std::min(end, (block + 1) * step);
            const T bv = b ? b[block % p.size_b] : T(0);
            if (G == 0) {
                // The forward reads only x: a branch-free loop the compiler can vectorise.
                for (; i < stop; ++i) {
                    out[i] = bias_act_math::elem<A, 0, T>(x[i], bv, T(0), T(0), T(0), alpha, gain, clamp);
                }
            } else {
                for (; i < stop; ++i) {
                    out[i] = bias_act_math::elem<A, G, T>(x[i], bv, xref ? xref[i] : T(0), yref ? yref[i] : T(0),
                                                          dy ? dy[i] : T(0), alpha, gain, clamp);
                }
            }
        }
    });
}

torch::Tensor bias_act_cpu_impl(torch::Tensor x, torch::Tensor b, torch::Tensor xref, torch::Tensor yref,
                                torch::Tensor dy, int64_t grad, int64_t dim, int64_t act, double alpha, double gain,
                                double clamp, bool inplace) {
    TORCH_CHECK(x.device().is_cpu(), "bias_act_cpu: x must be a CPU tensor");
    TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
                "bias_act_cpu: x must be float32 or float64, got ", x.scalar_type());
    TORCH_CHECK(x.is_contiguous(), "bias_act_cpu: x must be contiguous");
    TORCH_CHECK(x.dim() >= 1 && dim >= 0 && dim < x.dim(), "bias_act_cpu: dim ", dim, " out of range for ", x.dim(),
                "-D x");
    TORCH_CHECK(grad >= 0 && grad <= 2, "bias_act_cpu: grad must be 0, 1 or 2, got ", grad);
    TORCH_CHECK(act >= BA_LINEAR && act <= BA_SWISH, "bias_act_cpu: unknown activation code ", act);
    TORCH_CHECK(x.numel() < (int64_t(1) << 62), "bias_act_cpu: x is too large");
    TORCH_CHECK(b.numel() == 0 || (b.dim() == 1 && b.numel() == x.size(dim)),
                "bias_act_cpu: b must be empty or have x.size(dim) = ", x.size(dim), " elements, got ", b.sizes());
    for (const torch::Tensor* t : {&b, &xref, &yref, &dy}) {
        TORCH_CHECK(t->numel() == 0 || (t->device().is_cpu() && t->scalar_type() == x.scalar_type() &&
                                        t->is_contiguous()),
                    "bias_act_cpu: every tensor must be a contiguous CPU tensor of x's dtype");
    }
    for (const torch::Tensor* t : {&xref, &yref, &dy}) {
        TORCH_CHECK(t->numel() == 0 || t->sizes() == x.sizes(), "bias_act_cpu: xref, yref and dy must be empty or shaped like x ",
                    x.sizes(), ", got ", t->sizes());
    }
    TORCH_CHECK(grad == 0 || clamp < 0 || yref.numel() > 0, "bias_act_cpu: clamped gradients need yref");
    TORCH_CHECK(grad == 0 || !(act == BA_RELU || act == BA_LRELU) || yref.numel() > 0,
                "bias_act_cpu: relu/lrelu gradients need yref");
    TORCH_CHECK(grad == 0 || act <= BA_LRELU || xref.numel() > 0, "bias_act_cpu: this activation's gradient needs xref");
    TORCH_CHECK(grad != 2 || dy.numel() > 0, "bias_act_cpu: the second derivative needs dy");

    torch::Tensor out = inplace ? x : torch::empty_like(x, at::MemoryFormat::Contiguous);
    if (x.numel() == 0) return out;
    int64_t step = 1;
    for (int64_t i = dim + 1; i < x.dim(); ++i) step *= x.size(i);
    BiasActParams p;
    p.x = x.data_ptr();
    p.b = b.numel() ? b.data_ptr() : nullptr;
    p.xref = xref.numel() ? xref.data_ptr() : nullptr;
    p.yref = yref.numel() ? yref.data_ptr() : nullptr;
    p.dy = dy.numel() ? dy.data_ptr() : nullptr;
    p.out = out.data_ptr();
    p.grad = static_cast<int>(grad);
    p.act = static_cast<int>(act);
    p.alpha = alpha;
    p.gain = gain;
    p.clamp = clamp;
    p.n = x.numel();
    p.size_b = b.numel();
    p.step_b = p.b ? std::max<int64_t>(step, 1) : p.n;

    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bias_act_cpu", [&] {
        BIAS_ACT_DISPATCH_ACT(p.act, {
            if (p.grad == 0) run_cpu<scalar_t, A, 0>(p);
            else if (p.grad == 1) run_cpu<scalar_t, A, 1>(p);
            else run_cpu<scalar_t, A, 2>(p);
        });
    });
    return out;
}

torch::Tensor bias_act_cpu(torch::Tensor x, torch::Tensor b, torch::Tensor xref, torch::Tensor yref,
                           torch::Tensor dy, int64_t grad, int64_t dim, int64_t act, double alpha, double gain,
                           double clamp) {
    return bias_act_cpu_impl(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp, false);
}

// Forward written into x (inference: the caller owns x and records no gradient).
torch::Tensor bias_act_cpu_inplace(torch::Tensor x, torch::Tensor b, int64_t dim, int64_t act, double alpha,
                                   double gain, double clamp) {
    torch::Tensor empty = x.new_empty({0});
    return bias_act_cpu_impl(x, b, empty, empty, empty, 0, dim, act, alpha, gain, clamp, true);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("bias_act", &bias_act_cpu, "fused bias + activation (+ derivatives) on the CPU");
    m.def("bias_act_", &bias_act_cpu_inplace, "fused bias + activation written into x (forward, CPU)");
}
