// Binding of the CUDA mesh rasteriser: validates inputs, then calls rasterize_cuda_launch.
#include <ATen/ATen.h>
#include <torch/csrc/utils/pybind.h>

#include <vector>

#define NEXT3D_RASTERIZE_CUDA_DECL
#include "rasterize/rasterize.h"

namespace {

std::vector<at::Tensor> rasterize_cuda(const at::Tensor& verts, const at::Tensor& faces, const at::Tensor& clip_w,
                                       int64_t height, int64_t width, int64_t cull_mode, bool perspective) {
    TORCH_CHECK(verts.is_cuda() && faces.is_cuda(), "rasterize_cuda: tensors must be on a CUDA device");
    TORCH_CHECK(verts.device() == faces.device(), "rasterize_cuda: verts and faces must be on the same device");
    TORCH_CHECK(verts.scalar_type() == at::kFloat, "rasterize_cuda: verts must be float32");
    TORCH_CHECK(faces.scalar_type() == at::kLong, "rasterize_cuda: faces must be int64");
    TORCH_CHECK(verts.dim() == 3 && verts.size(2) == 3, "rasterize_cuda: verts must be (B, V, 3)");
    TORCH_CHECK(faces.dim() == 3 && faces.size(2) == 3 && faces.size(0) == verts.size(0),
                "rasterize_cuda: faces must be (B, F, 3) with the batch of verts");
    TORCH_CHECK(verts.is_contiguous() && faces.is_contiguous(), "rasterize_cuda: inputs must be contiguous");
    if (clip_w.numel() > 0) {
        TORCH_CHECK(clip_w.device() == verts.device() && clip_w.scalar_type() == at::kFloat && clip_w.is_contiguous(),
                    "rasterize_cuda: clip_w must be a contiguous float32 tensor on the device of verts");
        TORCH_CHECK(clip_w.dim() == 2 && clip_w.size(0) == verts.size(0) && clip_w.size(1) == verts.size(1),
                    "rasterize_cuda: clip_w must be (B, V)");
    }
    TORCH_CHECK(!perspective || clip_w.numel() > 0, "rasterize_cuda: perspective correction needs clip_w");
    TORCH_CHECK(height > 0 && width > 0 && height < (1 << 30) && width < (1 << 30),
                "rasterize_cuda: image size must be positive");
    TORCH_CHECK(cull_mode >= -1 && cull_mode <= 1, "rasterize_cuda: cull_mode must be -1, 0 or 1");
    return rasterize_cuda_launch(verts, faces, clip_w, height, width, cull_mode, perspective);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("rasterize", &rasterize_cuda,
          "rasterize(verts (B,V,3) f32, faces (B,F,3) i64, clip_w (B,V) f32 or empty, H, W, cull_mode, "
          "perspective) -> [face_idx, bary, depth]");
}
