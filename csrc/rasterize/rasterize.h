// Mesh rasteriser: per-face setup and per-pixel math shared by the C++ and CUDA kernels.
//
// Conventions are those of next3d/render/rasterize.py (the reference): NDC x right across
// columns, y down across rows, pixel (i, j) centre at (-1 + (2j+1)/W, -1 + (2i+1)/H), smaller
// z nearer, lower face index wins ties. All coverage and depth math is float64 with the same
// operations in the same order as the reference, without FMA contraction (the r_* helpers use
// the round-to-nearest intrinsics on the GPU), so all implementations agree exactly.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define RAST_HD __host__ __device__ __forceinline__
#else
#define RAST_HD inline
#endif

namespace next3d_rasterize {

RAST_HD double r_add(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}
RAST_HD double r_sub(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dsub_rn(a, b);
#else
    return a - b;
#endif
}
RAST_HD double r_mul(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
RAST_HD double r_div(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}

RAST_HD bool r_isfinite(double a) {
#if defined(__CUDA_ARCH__)
    return isfinite(a);
#else
    return std::isfinite(a);
#endif
}

// edge(a, b, p) = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x)
RAST_HD double edge_fn(double ax, double ay, double bx, double by, double px, double py) {
    return r_sub(r_mul(r_sub(bx, ax), r_sub(py, ay)), r_mul(r_sub(by, ay), r_sub(px, ax)));
}

// Pixel centre coordinate along an axis of `size` pixels: (2k + 1) / size - 1.
RAST_HD double pixel_centre(int64_t k, int64_t size) {
    return r_sub(r_div(static_cast<double>(2 * k + 1), static_cast<double>(size)), 1.0);
}

struct FaceSetup {
    double x[3], y[3], z[3], w[3];
    double area;
    int32_t col0, col1, row0, row1;  // inclusive pixel box, clamped to the image
    int32_t valid;
};

// Conservative pixel index range of the NDC interval [lo, hi] (rounded outwards), as in the reference.
RAST_HD void pixel_range(double lo, double hi, int64_t size, int32_t* first, int32_t* last, bool* ok) {
    const double half = static_cast<double>(size) / 2.0;
    double a = (lo + 1.0) * half - 0.5;
    double b = (hi + 1.0) * half - 0.5;
    const double lim_lo = -4.0, lim_hi = static_cast<double>(size) + 4.0;
    a = a < lim_lo ? lim_lo : (a > lim_hi ? lim_hi : a);
    b = b < lim_lo ? lim_lo : (b > lim_hi ? lim_hi : b);
    const double f = std::floor(a);
    const double l = std::ceil(b);
    *ok = (f <= l) && (l >= 0.0) && (f <= static_cast<double>(size - 1));
    const double fc = f < 0.0 ? 0.0 : (f > size - 1 ? size - 1 : f);
    const double lc = l < 0.0 ? 0.0 : (l > size - 1 ? size - 1 : l);
    *first = static_cast<int32_t>(fc);
    *last = static_cast<int32_t>(lc);
}

// Fill `s` for face `f` of batch item `b`. cull_mode: 0 none, 1 keep area < 0 (ccw on
// screen), -1 keep area > 0 (cw). Faces with out-of-range indices are marked invalid so the
// kernels never read out of bounds (Python checks the range first and raises).
RAST_HD void setup_face(const float* verts, const int64_t* faces, const float* clip_w, int64_t b, int64_t f,
                        int64_t num_verts, int64_t num_faces, int64_t height, int64_t width, int cull_mode,
                        FaceSetup* s) {
    s->valid = 0;
    s->col0 = s->row0 = 0;
    s->col1 = s->row1 = -1;
    const int64_t* fv = faces + (b * num_faces + f) * 3;
    bool ok = true;
    for (int k = 0; k < 3; ++k) {
        const int64_t vi = fv[k];
        if (vi < 0 || vi >= num_verts) {
            return;
        }
        const float* p = verts + (b * num_verts + vi) * 3;
        s->x[k] = static_cast<double>(p[0]);
        s->y[k] = static_cast<double>(p[1]);
        s->z[k] = static_cast<double>(p[2]);
        ok = ok && r_isfinite(s->x[k]) && r_isfinite(s->y[k]) && r_isfinite(s->z[k]);
        if (clip_w != nullptr) {
            s->w[k] = static_cast<double>(clip_w[b * num_verts + vi]);
            ok = ok && r_isfinite(s->w[k]) && s->w[k] > 0.0;
        } else {
            s->w[k] = 1.0;
        }
    }
    if (!ok) {
        return;
    }
    s->area = edge_fn(s->x[0], s->y[0], s->x[1], s->y[1], s->x[2], s->y[2]);
    if (!(s->area != 0.0) || !r_isfinite(s->area)) {
        return;
    }
    if ((cull_mode == 1 && !(s->area < 0.0)) || (cull_mode == -1 && !(s->area > 0.0))) {
        return;
    }
    const double xmin = std::fmin(std::fmin(s->x[0], s->x[1]), s->x[2]);
    const double xmax = std::fmax(std::fmax(s->x[0], s->x[1]), s->x[2]);
    const double ymin = std::fmin(std::fmin(s->y[0], s->y[1]), s->y[2]);
    const double ymax = std::fmax(std::fmax(s->y[0], s->y[1]), s->y[2]);
    bool okx, oky;
    pixel_range(xmin, xmax, width, &s->col0, &s->col1, &okx);
    pixel_range(ymin, ymax, height, &s->row0, &s->row1, &oky);
    s->valid = (okx && oky) ? 1 : 0;
}

// Edge functions e0, e1, e2 of the face at the pixel centre (px, py).
RAST_HD void edges(const FaceSetup& s, double px, double py, double* e) {
    e[0] = edge_fn(s.x[1], s.y[1], s.x[2], s.y[2], px, py);
    e[1] = edge_fn(s.x[2], s.y[2], s.x[0], s.y[0], px, py);
    e[2] = edge_fn(s.x[0], s.y[0], s.x[1], s.y[1], px, py);
}

// Inside or on the boundary: every edge function has the sign of the area, or is zero.
RAST_HD bool inside(const FaceSetup& s, const double* e) {
    if (s.area > 0.0) {
        return e[0] >= 0.0 && e[1] >= 0.0 && e[2] >= 0.0;
    }
    return e[0] <= 0.0 && e[1] <= 0.0 && e[2] <= 0.0;
}

// Barycentrics (optionally perspective-corrected) and interpolated depth from edge values.
RAST_HD double bary_depth_from_edges(const FaceSetup& s, const double* e, bool perspective, double* bary) {
    double b0 = r_div(e[0], s.area);
    double b1 = r_div(e[1], s.area);
    double b2 = r_div(e[2], s.area);
    if (perspective) {
        const double q0 = r_div(b0, s.w[0]);
        const double q1 = r_div(b1, s.w[1]);
        const double q2 = r_div(b2, s.w[2]);
        const double sum = r_add(r_add(q0, q1), q2);
        b0 = r_div(q0, sum);
        b1 = r_div(q1, sum);
        b2 = r_div(q2, sum);
    }
    bary[0] = b0;
    bary[1] = b1;
    bary[2] = b2;
    return r_add(r_add(r_mul(b0, s.z[0]), r_mul(b1, s.z[1])), r_mul(b2, s.z[2]));
}

RAST_HD double bary_depth(const FaceSetup& s, double px, double py, bool perspective, double* bary) {
    double e[3];
    edges(s, px, py, e);
    return bary_depth_from_edges(s, e, perspective, bary);
}

}  // namespace next3d_rasterize

#if defined(__CUDACC__) || defined(NEXT3D_RASTERIZE_CUDA_DECL)
#include <ATen/ATen.h>
#include <vector>
// Implemented in rasterize_cuda.cu; inputs already validated by the binding.
std::vector<at::Tensor> rasterize_cuda_launch(const at::Tensor& verts, const at::Tensor& faces,
                                              const at::Tensor& clip_w, int64_t height, int64_t width,
                                              int64_t cull_mode, bool perspective);
#endif
