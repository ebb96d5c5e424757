// gelu2: the official activation x * sigmoid(1.702 x). See kernels/ops.h.
#include "kernels/ops.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vmath.h"

void gelu2_forward(float *out, const float *inp, size_t N) {
#pragma omp parallel for simd schedule(static) if (N > PAR_MIN)
  for (size_t i = 0; i < N; i++) {
    float x = inp[i];
    out[i] = x / (1.0f + expf(-1.702f * x));
  }
}

// d/dx x s(ax) = s + a x s (1 - s), s = sigmoid(a x), a = 1.702.
void gelu2_backward(float *dinp, const float *inp, const float *dout, size_t N) {
#pragma omp parallel for simd schedule(static) if (N > PAR_MIN)
  for (size_t i = 0; i < N; i++) {
    float x = inp[i];
    float s = 1.0f / (1.0f + expf(-1.702f * x));
    dinp[i] += dout[i] * (s + 1.702f * x * s * (1.0f - s));
  }
}
