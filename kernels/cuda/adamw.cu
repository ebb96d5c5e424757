// adamw: the optimizer on the GPU over fp32 master weights: the AdamW update per element
// (adamw_element of kernels/math.h, the CPU's arithmetic), the gradient's global L2 norm (fixed
// 65536-element chunks summed in double, the chunks in order: launch-independent, as the CPU's)
// and the scaling of accumulation and clipping.
#include "kernels/cuda/cuda.cuh"

__global__ static void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, adamw_step s) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) adamw_element(&p[i], g[i], &m[i], &v[i], &s);
}

void cuda_adamw_apply(float *p, const float *g, float *m, float *v, size_t n, const adamw_step *s) {
  if (!n) return;
  adamw_kernel<<<ceil_div(n, 256), 256>>>(p, g, m, v, n, *s);
  LAUNCH_CHECK();
}

#define NORM_THREADS 256

__global__ static void sumsq_chunk_kernel(double *part, const float *g, size_t n) {
  __shared__ double red[NORM_THREADS];
  size_t b = (size_t)blockIdx.x * NORM_CHUNK, e = b + NORM_CHUNK < n ? b + NORM_CHUNK : n;
  double s = 0.0;
  for (size_t i = b + threadIdx.x; i < e; i += NORM_THREADS) s += (double)g[i] * g[i];
  red[threadIdx.x] = s;
  __syncthreads();
  for (int w = NORM_THREADS / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) part[blockIdx.x] = red[0];
}

double cuda_global_norm(const float *g, size_t n) {
  if (!n) return 0.0;
  size_t chunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
  static void *buf;
  static size_t cap;
  double *d = (double *)cuda_scratch(&buf, &cap, chunks * sizeof(double));
  sumsq_chunk_kernel<<<(unsigned)chunks, NORM_THREADS>>>(d, g, n);
  LAUNCH_CHECK();
  double *h = (double *)malloc(chunks * sizeof *h), total = 0.0;
  CUDA_CHECK(cudaMemcpy(h, d, chunks * sizeof *h, cudaMemcpyDeviceToHost));
  for (size_t c = 0; c < chunks; c++) total += h[c];
  free(h);
  return sqrt(total);
}

__global__ static void scale_kernel(float *g, size_t n, float s) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) g[i] *= s;
}

void cuda_scale(float *g, size_t n, float s) {
  if (!n) return;
  scale_kernel<<<ceil_div(n, 256), 256>>>(g, n, s);
  LAUNCH_CHECK();
}
