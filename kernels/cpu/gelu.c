// gelu2: the official activation x * sigmoid(1.702 x), elementwise with kernels/math.h's
// arithmetic. See kernels/ops.h.
#include "kernels/ops.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vmath.h"

void gelu2_forward(float *out, const float *inp, size_t N) {
#pragma omp parallel for simd schedule(static) if (N > PAR_MIN)
  for (size_t i = 0; i < N; i++) {
    out[i] = gelu2(inp[i]);
  }
}

void gelu2_backward(float *dinp, const float *inp, const float *dout, size_t N) {
#pragma omp parallel for simd schedule(static) if (N > PAR_MIN)
  for (size_t i = 0; i < N; i++) {
    dinp[i] += dout[i] * gelu2_grad(inp[i]);
  }
}
