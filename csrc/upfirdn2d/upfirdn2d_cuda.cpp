// CUDA entry point and Python binding of upfirdn2d: validates, guards the device,
// dispatches on dtype and launches the kernel in upfirdn2d_cuda.cu.
#include <torch/extension.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "upfirdn2d/upfirdn2d.h"

namespace {

torch::Tensor upfirdn2d_cuda(torch::Tensor x, torch::Tensor f, int64_t up_x, int64_t up_y, int64_t down_x,
                             int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1,
                             bool flip, double gain) {
    TORCH_CHECK(x.is_cuda() && f.device() == x.device(), "upfirdn2d_cuda: x and f must be on the same CUDA device");
    TORCH_CHECK(x.scalar_type() == at::kHalf || x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
                "upfirdn2d_cuda: x must be float16, float32 or float64, got ", x.scalar_type());
    TORCH_CHECK(f.scalar_type() == at::kFloat, "upfirdn2d_cuda: f must be float32, got ", f.scalar_type());
    TORCH_CHECK(x.dim() == 4 && x.is_contiguous(), "upfirdn2d_cuda: x must be a contiguous 4-D tensor, got ", x.sizes());
    TORCH_CHECK(f.dim() == 2 && f.is_contiguous() && f.numel() > 0,
                "upfirdn2d_cuda: f must be a contiguous non-empty 2-D tensor, got ", f.sizes());
    TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "upfirdn2d_cuda: up and down must be >= 1");
    TORCH_CHECK(x.size(2) * up_y < (int64_t(1) << 30) && x.size(3) * up_x < (int64_t(1) << 30),
                "upfirdn2d_cuda: image too large");
    const int64_t out_h = (x.size(2) * up_y + pad_y0 + pad_y1 - f.size(0) + down_y) / down_y;
    const int64_t out_w = (x.size(3) * up_x + pad_x0 + pad_x1 - f.size(1) + down_x) / down_x;
    TORCH_CHECK(out_h >= 1 && out_w >= 1, "upfirdn2d_cuda: the output would be empty (", out_h, "x", out_w, ")");

    const c10::cuda::CUDAGuard guard(x.device());
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
    void* stream = c10::cuda::getCurrentCUDAStream().stream();
    if (x.scalar_type() == at::kHalf) upfirdn2d_cuda_launch<c10::Half>(p, stream);
    else if (x.scalar_type() == at::kFloat) upfirdn2d_cuda_launch<float>(p, stream);
    else upfirdn2d_cuda_launch<double>(p, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return y;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("upfirdn2d", &upfirdn2d_cuda, "upsample, FIR filter, downsample (CUDA)");
}
