// pool: the mean over positions on the GPU, one thread per (example, channel) summing positions
// in order as the CPU reference does. See kernels/ops.h.
#include "kernels/cuda/cuda.cuh"

__global__ static void meanpool_forward_kernel(float *out, const float *inp, int B, int T, int C) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)B * C) return;
  size_t b = i / C, c = i % C;
  float s = 0.0f;
  for (int t = 0; t < T; t++) s += inp[(b * T + t) * C + c];
  out[i] = s / (float)T;
}

__global__ static void meanpool_backward_kernel(float *dinp, const float *dout, int B, int T, int C) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)B * T * C) return;
  size_t c = i % C, b = i / ((size_t)T * C);
  dinp[i] += dout[b * C + c] / (float)T;
}

void cuda_meanpool_forward(float *out, const float *inp, int B, int T, int C) {
  meanpool_forward_kernel<<<ceil_div((size_t)B * C, 128), 128>>>(out, inp, B, T, C);
  LAUNCH_CHECK();
}

void cuda_meanpool_backward(float *dinp, const float *dout, int B, int T, int C) {
  meanpool_backward_kernel<<<ceil_div((size_t)B * T * C, 256), 256>>>(dinp, dout, B, T, C);
  LAUNCH_CHECK();
}
