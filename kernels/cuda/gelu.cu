// gelu: x * sigmoid(1.702 x) elementwise on the GPU, the arithmetic of kernels/math.h.
#include "kernels/cuda/cuda.cuh"

__global__ static void gelu2_forward_kernel(float *out, const float *inp, size_t N) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < N) out[i] = gelu2(inp[i]);
}

__global__ static void gelu2_backward_kernel(float *dinp, const float *inp, const float *dout, size_t N) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < N) dinp[i] += dout[i] * gelu2_grad(inp[i]);
}

void cuda_gelu2_forward(float *out, const float *inp, size_t N) {
  gelu2_forward_kernel<<<ceil_div(N, 256), 256>>>(out, inp, N);
  LAUNCH_CHECK();
}

void cuda_gelu2_backward(float *dinp, const float *inp, const float *dout, size_t N) {
  gelu2_backward_kernel<<<ceil_div(N, 256), 256>>>(dinp, inp, dout, N);
  LAUNCH_CHECK();
}
