// Fused bias + activation (+ its first and second derivatives): shared by the CPU and CUDA kernels.
//
// Element i of a contiguous tensor of n elements gets bias b[(i / step_b) % size_b]
// (step_b = product of the sizes after `dim`, size_b = x.size(dim); size_b = 0: no bias).
//
// Modes (`grad`), with v = xref + b the pre-activation and y the forward output:
//   0  forward:            out = clamp(act(x + b) * gain)
//   1  first derivative:   out = x * gain * act'(v) * m        (x = incoming gradient dy)
//   2  second derivative:  out = x * dy * gain * act''(v) * m  (x = gradient w.r.t. mode 1's output)
// where m = 0 where the forward clamped (|y| >= clamp), else 1. relu and lrelu take the
// sign of act(v) from y (so x need not be kept); the others recompute from v.
// Activation codes match torch_utils/ops/bias_act.py ACTIVATIONS.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define BA_HD __host__ __device__ __forceinline__
#else
#define BA_HD inline
#endif

enum BiasActCode : int {
    BA_LINEAR = 0,
    BA_RELU = 1,
    BA_LRELU = 2,
    BA_TANH = 3,
    BA_SIGMOID = 4,
    BA_ELU = 5,
    BA_SELU = 6,
    BA_SOFTPLUS = 7,
    BA_SWISH = 8,
};

struct BiasActParams {
    const void* x;     // input (mode 0) or incoming gradient (modes 1, 2); n elements
    const void* b;     // bias, size_b elements, or nullptr
    const void* xref;  // pre-bias forward input (modes 1, 2), or nullptr
    const void* yref;  // forward output (modes 1, 2), or nullptr
    const void* dy;    // mode 2: the gradient that mode 1 received; else nullptr
    void* out;         // n elements
    int grad;
    int act;
    double alpha;
    double gain;
    double clamp;      // < 0: no clamp
    int64_t n;
    int64_t size_b;
    int64_t step_b;
};

namespace bias_act_math {

#if defined(__CUDA_ARCH__)
template <typename S> BA_HD S exp_(S v) { return exp(v); }  // CUDA's float/double overloads
template <typename S> BA_HD S tanh_(S v) { return tanh(v); }
template <typename S> BA_HD S log1p_(S v) { return log1p(v); }
#else
template <typename S> BA_HD S exp_(S v) { return std::exp(v); }
template <typename S> BA_HD S tanh_(S v) { return std::tanh(v); }
template <typename S> BA_HD S log1p_(S v) { return std::log1p(v); }
#endif
template <typename S> BA_HD S sigmoid_(S v) { return S(1) / (S(1) + exp_(-v)); }

constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;

// One element. S is the compute type (float for half inputs).
template <int A, int G, typename S>
BA_HD S elem(S x, S b, S xref, S yref, S dy, S alpha, S gain, S clamp) {
    if (G == 0) {
        S v = x + b;
        S y = v;
        if (A == BA_RELU) y = v > S(0) ? v : S(0);
        if (A == BA_LRELU) y = v > S(0) ? v : v * alpha;
        if (A == BA_TANH) y = tanh_(v);
        if (A == BA_SIGMOID) y = sigmoid_(v);
        if (A == BA_ELU) y = v > S(0) ? v : exp_(v) - S(1);
        if (A == BA_SELU) y = v > S(0) ? S(kSeluScale) * v : S(kSeluScale * kSeluAlpha) * (exp_(v) - S(1));
        if (A == BA_SOFTPLUS) y = v > S(20) ? v : log1p_(exp_(v));  // torch's threshold 20
        if (A == BA_SWISH) y = v * sigmoid_(v);
        y = y * gain;
        if (clamp >= S(0)) y = y > clamp ? clamp : (y < -clamp ? -clamp : y);
        return y;
    }
    if (clamp >= S(0) && !(yref < clamp && yref > -clamp)) return S(0);
    S v = xref + b;
    S d = S(0);
    if (G == 1) {
        if (A == BA_LINEAR) d = S(1);
        if (A == BA_RELU) d = yref * gain > S(0) ? S(1) : S(0);
        if (A == BA_LRELU) d = yref * gain > S(0) ? S(1) : alpha;
        if (A == BA_TANH) { S t = tanh_(v); d = S(1) - t * t; }
        if (A == BA_SIGMOID) { S s = sigmoid_(v); d = s * (S(1) - s); }
        if (A == BA_ELU) d = v > S(0) ? S(1) : exp_(v);
        if (A == BA_SELU) d = v > S(0) ? S(kSeluScale) : S(kSeluScale * kSeluAlpha) * exp_(v);
        if (A == BA_SOFTPLUS) d = v > S(20) ? S(1) : sigmoid_(v);
        if (A == BA_SWISH) { S s = sigmoid_(v); d = s + v * s * (S(1) - s); }
        return x * gain * d;
    }
    // G == 2: linear, relu and lrelu have act'' = 0.
    if (A == BA_TANH) { S t = tanh_(v); d = S(-2) * t * (S(1) - t * t); }
    if (A == BA_SIGMOID) { S s = sigmoid_(v); d = s * (S(1) - s) * (S(1) - S(2) * s); }
    if (A == BA_ELU) d = v > S(0) ? S(0) : exp_(v);
    if (A == BA_SELU) d = v > S(0) ? S(0) : S(kSeluScale * kSeluAlpha) * exp_(v);
    if (A == BA_SOFTPLUS) { S s = sigmoid_(v); d = v > S(20) ? S(0) : s * (S(1) - s); }
    if (A == BA_SWISH) { S s = sigmoid_(v); d = s * (S(1) - s) * (S(2) + v * (S(1) - S(2) * s)); }
    return x * dy * gain * d;
}

}  // namespace bias_act_math

// Calls fn(std::integral_constant<int, A>) for the runtime activation code `act`.
#define BIAS_ACT_DISPATCH_ACT(act, ...)                                                \
    switch (act) {                                                                     \
        case BA_LINEAR: { constexpr int A = BA_LINEAR; __VA_ARGS__; } break;           \
        case BA_RELU: { constexpr int A = BA_RELU; __VA_ARGS__; } break;               \
        case BA_LRELU: { constexpr int A = BA_LRELU; __VA_ARGS__; } break;             \
        case BA_TANH: { constexpr int A = BA_TANH; __VA_ARGS__; } break;               \
        case BA_SIGMOID: { constexpr int A = BA_SIGMOID; __VA_ARGS__; } break;         \
        case BA_ELU: { constexpr int A = BA_ELU; __VA_ARGS__; } break;                 \
        case BA_SELU: { constexpr int A = BA_SELU; __VA_ARGS__; } break;               \
        case BA_SOFTPLUS: { constexpr int A = BA_SOFTPLUS; __VA_ARGS__; } break;       \
        case BA_SWISH: { constexpr int A = BA_SWISH; __VA_ARGS__; } break;             \
        default: break;                                                                \
    }

// Launches the CUDA kernel (bias_act_cuda.cu) for element type T (float, double, c10::Half).
template <typename T>
void bias_act_cuda_launch(const BiasActParams& p, void* stream);
