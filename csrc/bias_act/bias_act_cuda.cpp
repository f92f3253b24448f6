// CUDA entry point and Python binding of bias_act: validates, guards the device,
// dispatches on dtype and launches the kernel in bias_act_cuda.cu.
#include <torch/extension.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "bias_act/bias_act.h"

namespace {

torch::Tensor bias_act_cuda(torch::Tensor x, torch::Tensor b, torch::Tensor xref, torch::Tensor yref,
                            torch::Tensor dy, int64_t grad, int64_t dim, int64_t act, double alpha, double gain,
                            double clamp) {
    TORCH_CHECK(x.is_cuda(), "bias_act_cuda: x must be a CUDA tensor");
    TORCH_CHECK(x.scalar_type() == at::kHalf || x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
                "bias_act_cuda: x must be float16, float32 or float64, got ", x.scalar_type());
    TORCH_CHECK(x.is_contiguous(), "bias_act_cuda: x must be contiguous");
    TORCH_CHECK(x.dim() >= 1 && dim >= 0 && dim < x.dim(), "bias_act_cuda: dim ", dim, " out of range for ", x.dim(),
                "-D x");
    TORCH_CHECK(grad >= 0 && grad <= 2, "bias_act_cuda: grad must be 0, 1 or 2, got ", grad);
    TORCH_CHECK(act >= BA_LINEAR && act <= BA_SWISH, "bias_act_cuda: unknown activation code ", act);
    TORCH_CHECK(b.numel() == 0 || (b.dim() == 1 && b.numel() == x.size(dim)),
                "bias_act_cuda: b must be empty or have x.size(dim) = ", x.size(dim), " elements, got ", b.sizes());
    for (const torch::Tensor* t : {&b, &xref, &yref, &dy}) {
        TORCH_CHECK(t->numel() == 0 || (t->device() == x.device() && t->scalar_type() == x.scalar_type() &&
                                        t->is_contiguous()),
                    "bias_act_cuda: every tensor must be contiguous, on x's device and of x's dtype");
    }
    for (const torch::Tensor* t : {&xref, &yref, &dy}) {
        TORCH_CHECK(t->numel() == 0 || t->sizes() == x.sizes(),
                    "bias_act_cuda: xref, yref and dy must be empty or shaped like x ", x.sizes(), ", got ", t->sizes());
    }
    TORCH_CHECK(grad == 0 || clamp < 0 || yref.numel() > 0, "bias_act_cuda: clamped gradients need yref");
    TORCH_CHECK(grad == 0 || !(act == BA_RELU || act == BA_LRELU) || yref.numel() > 0,
                "bias_act_cuda: relu/lrelu gradients need yref");
    TORCH_CHECK(grad == 0 || act <= BA_LRELU || xref.numel() > 0, "bias_act_cuda: this activation's gradient needs xref");
    TORCH_CHECK(grad != 2 || dy.numel() > 0, "bias_act_cuda: the second derivative needs dy");

    const c10::cuda::CUDAGuard guard(x.device());
    torch::Tensor out = torch::empty_like(x, at::MemoryFormat::Contiguous);
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
    void* stream = c10::cuda::getCurrentCUDAStream().stream();
    if (x.scalar_type() == at::kHalf) bias_act_cuda_launch<c10::Half>(p, stream);
    else if (x.scalar_type() == at::kFloat) bias_act_cuda_launch<float>(p, stream);
    else bias_act_cuda_launch<double>(p, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("bias_act", &bias_act_cuda, "fused bias + activation (+ derivatives) on CUDA");
}
