// rmsnorm: x * rsqrt(mean(x^2) + eps) * g on the GPU, one warp per row; the row's scale is
// rms_rstd of kernels/math.h, as on the CPU. The gain's gradient sums fixed chunks of rows, then
// the chunks in order: deterministic, no atomics. See kernels/ops.h.
#include "kernels/cuda/cuda.cuh"

__device__ static inline float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ static void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp, const float *g,
                                              int N, int C) {
  int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (n >= N) return;
  const float *x = inp + (size_t)n * C;
  float ss = 0.0f;
  for (int c = lane; c < C; c += 32) ss += x[c] * x[c];
  float r = rms_rstd(warp_sum(ss), C);
  float *y = out + (size_t)n * C;
  for (int c = lane; c < C; c += 32) y[c] = x[c] * r * g[c];
  if (rstd && lane == 0) rstd[n] = r;
}

void cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *g, int N, int C) {
  rmsnorm_forward_kernel<<<ceil_div(N, 8), 256>>>(out, rstd, inp, g, N, C);
  LAUNCH_CHECK();
}

// dx_i += r g_i dy_i - x_i r^3 / C sum_j dy_j g_j x_j
__global__ static void rmsnorm_dinp_kernel(float *dinp, const float *dout, const float *inp, const float *g,
                                           const float *rstd, int N, int C) {
  int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (n >= N) return;
  const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
  float dot = 0.0f;
  for (int c = lane; c < C; c += 32) dot += dy[c] * g[c] * x[c];
  float r = rstd[n], k = warp_sum(dot) * r * r * r / C;
  float *dx = dinp + (size_t)n * C;
  for (int c = lane; c < C; c += 32) dx[c] += r * g[c] * dy[c] - x[c] * k;
}

#define DG_ROWS 256  // rows per partial sum of the gain's gradient

__global__ static void rmsnorm_dg_partial_kernel(float *part, const float *dout, const float *inp,
                                                 const float *rstd, int N, int C) {
  int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
  if (c >= C) return;
  int n0 = chunk * DG_ROWS, n1 = n0 + DG_ROWS < N ? n0 + DG_ROWS : N;
  float s = 0.0f;
  for (int n = n0; n < n1; n++) s += dout[(size_t)n * C + c] * inp[(size_t)n * C + c] * rstd[n];
  part[(size_t)chunk * C + c] = s;
}

__global__ static void rmsnorm_dg_sum_kernel(float *dg, const float *part, int chunks, int C) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float s = 0.0f;
  for (int k = 0; k < chunks; k++) s += part[(size_t)k * C + c];
  dg[c] += s;
}

void cuda_rmsnorm_backward(float *dinp, float *dg, const float *dout, const float *inp, const float *g,
                           const float *rstd, int N, int C) {
  if (dinp) {
    rmsnorm_dinp_kernel<<<ceil_div(N, 8), 256>>>(dinp, dout, inp, g, rstd, N, C);
    LAUNCH_CHECK();
  }
  if (dg) {
    static void *part;
    static size_t cap;
    int chunks = (int)ceil_div(N, DG_ROWS);
    float *p = (float *)cuda_scratch(&part, &cap, (size_t)chunks * C * sizeof(float));
    rmsnorm_dg_partial_kernel<<<dim3(ceil_div(C, 128), chunks), 128>>>(p, dout, inp, rstd, N, C);
    LAUNCH_CHECK();
    rmsnorm_dg_sum_kernel<<<ceil_div(C, 128), 128>>>(dg, p, chunks, C);
    LAUNCH_CHECK();
  }
}
