// residual: the residual stream's addition on the GPU. See kernels/ops.h.
#include "kernels/cuda/cuda.cuh"

__global__ static void residual_kernel(float *out, const float *a, const float *b, size_t N) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < N) out[i] = a[i] + b[i];
}

void cuda_residual_forward(float *out, const float *a, const float *b, size_t N) {
  residual_kernel<<<ceil_div(N, 256), 256>>>(out, a, b, N);
  LAUNCH_CHECK();
}
