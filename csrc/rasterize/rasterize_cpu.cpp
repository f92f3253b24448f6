// CPU mesh rasteriser: faces are binned into bands of rows per image, then bands are
// rasterised in parallel (at::parallel_for), each walking its faces in ascending index order
// so that a strict depth comparison leaves ties to the lower face index.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/utils/pybind.h>

#include <limits>
#include <vector>

#include "rasterize/rasterize.h"

namespace {

using next3d_rasterize::FaceSetup;

constexpr int64_t kBandRows = 8;

void check_inputs(const at::Tensor& verts, const at::Tensor& faces, const at::Tensor& clip_w, int64_t height,
                  int64_t width, int64_t cull_mode) {
    TORCH_CHECK(verts.device().is_cpu() && faces.device().is_cpu(), "rasterize_cpu: tensors must be on the CPU");
    TORCH_CHECK(verts.scalar_type() == at::kFloat, "rasterize_cpu: verts must be float32");
    TORCH_CHECK(faces.scalar_type() == at::kLong, "rasterize_cpu: faces must be int64");
    TORCH_CHECK(verts.dim() == 3 && verts.size(2) == 3, "rasterize_cpu: verts must be (B, V, 3)");
    TORCH_CHECK(faces.dim() == 3 && faces.size(2) == 3 && faces.size(0) == verts.size(0),
                "rasterize_cpu: faces must be (B, F, 3) with the batch of verts");
    TORCH_CHECK(verts.is_contiguous() && faces.is_contiguous(), "rasterize_cpu: inputs must be contiguous");
    if (clip_w.numel() > 0) {
        TORCH_CHECK(clip_w.device().is_cpu() && clip_w.scalar_type() == at::kFloat && clip_w.is_contiguous(),
                    "rasterize_cpu: clip_w must be a contiguous float32 CPU tensor");
        TORCH_CHECK(clip_w.dim() == 2 && clip_w.size(0) == verts.size(0) && clip_w.size(1) == verts.size(1),
                    "rasterize_cpu: clip_w must be (B, V)");
    }
    TORCH_CHECK(height > 0 && width > 0, "rasterize_cpu: image size must be positive");
    TORCH_CHECK(height < (1 << 30) && width < (1 << 30), "rasterize_cpu: image size too large");
    TORCH_CHECK(cull_mode >= -1 && cull_mode <= 1, "rasterize_cpu: cull_mode must be -1, 0 or 1");
}

std::vector<at::Tensor> rasterize_cpu(const at::Tensor& verts, const at::Tensor& faces, const at::Tensor& clip_w,
                                      int64_t height, int64_t width, int64_t cull_mode, bool perspective) {
    check_inputs(verts, faces, clip_w, height, width, cull_mode);
    TORCH_CHECK(!perspective || clip_w.numel() > 0, "rasterize_cpu: perspective correction needs clip_w");
    const int64_t batch = verts.size(0), num_verts = verts.size(1), num_faces = faces.size(1);
    auto face_idx = at::full({batch, height, width}, -1, faces.options());
    auto bary = at::zeros({batch, height, width, 3}, verts.options());
    auto depth = at::full({batch, height, width}, std::numeric_limits<float>::infinity(), verts.options());
    if (batch == 0 || num_faces == 0 || num_verts == 0) {
        return {face_idx, bary, depth};
    }
    const float* vp = verts.data_ptr<float>();
    const int64_t* fp = faces.data_ptr<int64_t>();
    const float* wp = clip_w.numel() > 0 ? clip_w.data_ptr<float>() : nullptr;
    const int cull = static_cast<int>(cull_mode);

    std::vector<FaceSetup> setups(static_cast<size_t>(batch * num_faces));
    at::parallel_for(0, batch * num_faces, 1024, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
            next3d_rasterize::setup_face(vp, fp, wp, k / num_faces, k % num_faces, num_verts, num_faces, height,
                                         width, cull, &setups[k]);
        }
    });

    // Bins: per image and band of kBandRows rows, the faces whose box reaches the band, ascending.
    const int64_t num_bands = (height + kBandRows - 1) / kBandRows;
    std::vector<std::vector<int32_t>> bins(static_cast<size_t>(batch * num_bands));
    at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            for (int64_t f = 0; f < num_faces; ++f) {
                const FaceSetup& s = setups[b * num_faces + f];
                if (!s.valid) continue;
                for (int64_t band = s.row0 / kBandRows; band <= s.row1 / kBandRows; ++band) {
                    bins[b * num_bands + band].push_back(static_cast<int32_t>(f));
                }
            }
        }
    });

    int64_t* out_face = face_idx.data_ptr<int64_t>();
    float* out_bary = bary.data_ptr<float>();
    float* out_depth = depth.data_ptr<float>();
    at::parallel_for(0, batch * num_bands, 1, [&](int64_t begin, int64_t end) {
        std::vector<double> zbuf(static_cast<size_t>(kBandRows * width));
        std::vector<int64_t> fbuf(static_cast<size_t>(kBandRows * width));
        double tmp[3], e[3];
        std::vector<double> col_x(static_cast<size_t>(width));
        for (int64_t c = 0; c < width; ++c) col_x[c] = next3d_rasterize::pixel_centre(c, width);
        for (int64_t task = begin; task < end; ++task) {
            const int64_t b = task / num_bands, band = task % num_bands;
            const int64_t r_begin = band * kBandRows;
            const int64_t r_end = std::min(height, r_begin + kBandRows);
            std::fill(zbuf.begin(), zbuf.end(), std::numeric_limits<double>::infinity());
            std::fill(fbuf.begin(), fbuf.end(), int64_t(-1));
            for (const int32_t f : bins[task]) {
                const FaceSetup& s = setups[b * num_faces + f];
                const int64_t r0 = std::max<int64_t>(s.row0, r_begin), r1 = std::min<int64_t>(s.row1, r_end - 1);
                for (int64_t r = r0; r <= r1; ++r) {
                    const double py = next3d_rasterize::pixel_centre(r, height);
                    const int64_t row_off = (r - r_begin) * width;
                    for (int64_t c = s.col0; c <= s.col1; ++c) {
                        next3d_rasterize::edges(s, col_x[c], py, e);
                        if (!next3d_rasterize::inside(s, e)) continue;
                        const double z = next3d_rasterize::bary_depth_from_edges(s, e, perspective, tmp);
                        if (z < zbuf[row_off + c]) {
                            zbuf[row_off + c] = z;
                            fbuf[row_off + c] = f;
                        }
                    }
                }
            }
            for (int64_t r = r_begin; r < r_end; ++r) {
                const double py = next3d_rasterize::pixel_centre(r, height);
                for (int64_t c = 0; c < width; ++c) {
                    const int64_t f = fbuf[(r - r_begin) * width + c];
                    if (f < 0) continue;
                    const int64_t pix = (b * height + r) * width + c;
                    const double z =
                        next3d_rasterize::bary_depth(setups[b * num_faces + f], col_x[c], py, perspective, tmp);
                    out_face[pix] = f;
                    out_depth[pix] = static_cast<float>(z);
                    for (int k = 0; k < 3; ++k) out_bary[pix * 3 + k] = static_cast<float>(tmp[k]);
                }
            }
        }
    });
    return {face_idx, bary, depth};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("rasterize", &rasterize_cpu,
          "rasterize(verts (B,V,3) f32, faces (B,F,3) i64, clip_w (B,V) f32 or empty, H, W, cull_mode, "
          "perspective) -> [face_idx, bary, depth]");
}
