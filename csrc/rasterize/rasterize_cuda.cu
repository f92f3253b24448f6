// CUDA mesh rasteriser, deterministic in three passes over per-face bounding boxes:
//   1. setup: one thread per (batch, face) fills a FaceSetup;
//   2. depth: one thread per face walks its box and atomicMin's an order-preserving 64-bit
//      key of the float64 depth into each covered pixel;
//   3. winner: the same walk again; where the face's depth key equals the pixel's minimum,
//      atomicMin of the face index (the lower index wins ties);
//   4. finish: one thread per pixel recomputes barycentrics and depth of its winner.
// atomicMin results do not depend on the order of arrival, so the output is deterministic
// and equal to the reference's.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <limits>
#include <vector>

#include "rasterize/rasterize.h"

namespace {

using next3d_rasterize::FaceSetup;

constexpr int kThreads = 256;
constexpr unsigned long long kEmptyKey = ~0ull;

// Order-preserving map of a float64 (not NaN) to uint64; -0.0 is folded into +0.0 first so
// that equal depths give equal keys.
__device__ __forceinline__ unsigned long long depth_key(double d) {
    d = __dadd_rn(d, 0.0);
    const unsigned long long bits = static_cast<unsigned long long>(__double_as_longlong(d));
    return (bits & 0x8000000000000000ull) ? ~bits : (bits | 0x8000000000000000ull);
}

__global__ void setup_kernel(const float* __restrict__ verts, const int64_t* __restrict__ faces,
                             const float* __restrict__ clip_w, int64_t batch, int64_t num_verts, int64_t num_faces,
                             int64_t height, int64_t width, int cull_mode, FaceSetup* __restrict__ setups) {
    const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (k >= batch * num_faces) return;
    next3d_rasterize::setup_face(verts, faces, clip_w, k / num_faces, k % num_faces, num_verts, num_faces, height,
                                 width, cull_mode, &setups[k]);
}

__global__ void depth_kernel(const FaceSetup* __restrict__ setups, int64_t batch, int64_t num_faces,
                             int64_t height, int64_t width, bool perspective,
                             unsigned long long* __restrict__ zkey) {
    const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (k >= batch * num_faces) return;
    const FaceSetup s = setups[k];
    if (!s.valid) return;
    const int64_t b = k / num_faces;
    double e[3], tmp[3];
    for (int64_t r = s.row0; r <= s.row1; ++r) {
        const double py = next3d_rasterize::pixel_centre(r, height);
        for (int64_t c = s.col0; c <= s.col1; ++c) {
            const double px = next3d_rasterize::pixel_centre(c, width);
            next3d_rasterize::edges(s, px, py, e);
            if (!next3d_rasterize::inside(s, e)) continue;
            const double z = next3d_rasterize::bary_depth_from_edges(s, e, perspective, tmp);
            atomicMin(&zkey[(b * height + r) * width + c], depth_key(z));
        }
    }
}

__global__ void winner_kernel(const FaceSetup* __restrict__ setups, int64_t batch, int64_t num_faces,
                              int64_t height, int64_t width, bool perspective,
                              const unsigned long long* __restrict__ zkey, unsigned long long* __restrict__ fbuf) {
    const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (k >= batch * num_faces) return;
    const FaceSetup s = setups[k];
    if (!s.valid) return;
    const int64_t b = k / num_faces, f = k % num_faces;
    double e[3], tmp[3];
    for (int64_t r = s.row0; r <= s.row1; ++r) {
        const double py = next3d_rasterize::pixel_centre(r, height);
        for (int64_t c = s.col0; c <= s.col1; ++c) {
            const double px = next3d_rasterize::pixel_centre(c, width);
            next3d_rasterize::edges(s, px, py, e);
            if (!next3d_rasterize::inside(s, e)) continue;
            const int64_t pix = (b * height + r) * width + c;
            const double z = next3d_rasterize::bary_depth_from_edges(s, e, perspective, tmp);
            if (depth_key(z) == zkey[pix]) {
                atomicMin(&fbuf[pix], static_cast<unsigned long long>(f));
            }
        }
    }
}

__global__ void finish_kernel(const FaceSetup* __restrict__ setups, int64_t batch, int64_t num_faces,
                              int64_t height, int64_t width, bool perspective,
                              const unsigned long long* __restrict__ fbuf, int64_t* __restrict__ out_face,
                              float* __restrict__ out_bary, float* __restrict__ out_depth) {
    const int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (pix >= batch * height * width) return;
    const unsigned long long f = fbuf[pix];
    if (f == kEmptyKey) {
        out_face[pix] = -1;
        out_depth[pix] = __int_as_float(0x7f800000);
        out_bary[pix * 3 + 0] = out_bary[pix * 3 + 1] = out_bary[pix * 3 + 2] = 0.0f;
        return;
    }
    const int64_t b = pix / (height * width);
    const int64_t rem = pix % (height * width);
    const int64_t r = rem / width, c = rem % width;
    double bary[3];
    const double z = next3d_rasterize::bary_depth(setups[b * num_faces + static_cast<int64_t>(f)],
                                                  next3d_rasterize::pixel_centre(c, width),
                                                  next3d_rasterize::pixel_centre(r, height), perspective, bary);
    out_face[pix] = static_cast<int64_t>(f);
    out_depth[pix] = static_cast<float>(z);
    for (int k = 0; k < 3; ++k) out_bary[pix * 3 + k] = static_cast<float>(bary[k]);
}

unsigned int blocks_for(int64_t n) { return static_cast<unsigned int>((n + kThreads - 1) / kThreads); }

}  // namespace

std::vector<at::Tensor> rasterize_cuda_launch(const at::Tensor& verts, const at::Tensor& faces,
                                              const at::Tensor& clip_w, int64_t height, int64_t width,
                                              int64_t cull_mode, bool perspective) {
    const c10::cuda::CUDAGuard guard(verts.device());
    const int64_t batch = verts.size(0), num_verts = verts.size(1), num_faces = faces.size(1);
    auto face_idx = at::full({batch, height, width}, -1, faces.options());
    auto bary = at::zeros({batch, height, width, 3}, verts.options());
    auto depth = at::full({batch, height, width}, std::numeric_limits<float>::infinity(), verts.options());
    if (batch == 0 || num_faces == 0 || num_verts == 0) {
        return {face_idx, bary, depth};
    }
    const int64_t num_pix = batch * height * width;
    const int64_t num_tasks = batch * num_faces;
    auto setup_buf = at::empty({num_tasks * static_cast<int64_t>(sizeof(FaceSetup))},
                               verts.options().dtype(at::kByte));
    // uint64 buffers, held as int64 tensors filled with all-ones bits (= kEmptyKey).
    auto zkey = at::full({num_pix}, -1, faces.options());
    auto fbuf = at::full({num_pix}, -1, faces.options());
    auto* setups = reinterpret_cast<FaceSetup*>(setup_buf.data_ptr<uint8_t>());
    auto* zk = reinterpret_cast<unsigned long long*>(zkey.data_ptr<int64_t>());
    auto* fb = reinterpret_cast<unsigned long long*>(fbuf.data_ptr<int64_t>());
    const float* wp = clip_w.numel() > 0 ? clip_w.data_ptr<float>() : nullptr;
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

    setup_kernel<<<blocks_for(num_tasks), kThreads, 0, stream>>>(
        verts.data_ptr<float>(), faces.data_ptr<int64_t>(), wp, batch, num_verts, num_faces, height, width,
        static_cast<int>(cull_mode), setups);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    depth_kernel<<<blocks_for(num_tasks), kThreads, 0, stream>>>(setups, batch, num_faces, height, width,
                                                                  perspective, zk);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    winner_kernel<<<blocks_for(num_tasks), kThreads, 0, stream>>>(setups, batch, num_faces, height, width,
                                                                   perspective, zk, fb);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    finish_kernel<<<blocks_for(num_pix), kThreads, 0, stream>>>(setups, batch, num_faces, height, width,
                                                                 perspective, fb, face_idx.data_ptr<int64_t>(),
                                                                 bary.data_ptr<float>(), depth.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return {face_idx, bary, depth};
}
