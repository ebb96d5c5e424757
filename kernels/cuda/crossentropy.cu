// crossentropy: softmax and cross-entropy per row on the GPU with per-row weights (AR mean, the
// BERT masked per-example mean and the classifier all come as weights), one block per row; the
// weighted total is summed in double by one block in row order. See kernels/ops.h.
#include "kernels/cuda/cuda.cuh"

#define CE_THREADS 256

__device__ static float block_reduce(float v, bool is_max) {
  __shared__ float red[CE_THREADS / 32];
  __shared__ float result;
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int o = 16; o > 0; o >>= 1) {
    float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, w) : v + w;
  }
  __syncthreads();  // red may still be read by the previous reduction
  if (lane == 0) red[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float r = red[0];
    for (int w = 1; w < CE_THREADS / 32; w++) r = is_max ? fmaxf(r, red[w]) : r + red[w];
    result = r;
  }
  __syncthreads();
  return result;
}

__global__ static void __launch_bounds__(CE_THREADS)
crossentropy_forward_kernel(float *losses, float *probs, const float *logits, const uint16_t *tgt,
                            const float *weight, int V) {
  const int n = blockIdx.x;
  const float *z = logits + (size_t)n * V;
  float *p = probs + (size_t)n * V;
  float mx = -INFINITY;
  for (int v = threadIdx.x; v < V; v += CE_THREADS) mx = fmaxf(mx, z[v]);
  mx = block_reduce(mx, true);
  float sum = 0.0f;
  for (int v = threadIdx.x; v < V; v += CE_THREADS) {
    float e = expf(z[v] - mx);
    p[v] = e;
    sum += e;
  }
  sum = block_reduce(sum, false);
  float inv = 1.0f / sum;
  for (int v = threadIdx.x; v < V; v += CE_THREADS) p[v] *= inv;
  if (threadIdx.x == 0)  // -log softmax from the logits, as the CPU reference
    losses[n] = weight[n] != 0.0f ? logf(sum) + mx - z[tgt[n]] : 0.0f;
}

__global__ static void weighted_total_kernel(double *total, const float *losses, const float *weight, int N) {
  __shared__ double part[CE_THREADS];
  double s = 0.0;
  for (int n = threadIdx.x; n < N; n += CE_THREADS) s += (double)weight[n] * losses[n];
  part[threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0.0;
    for (int i = 0; i < CE_THREADS; i++) t += part[i];
    *total = t;
  }
}

double cuda_crossentropy_forward(float *losses, float *probs, const float *logits, const uint16_t *tgt,
                                 const float *weight, int N, int V) {
  crossentropy_forward_kernel<<<N, CE_THREADS>>>(losses, probs, logits, tgt, weight, V);
  LAUNCH_CHECK();
  static void *buf;
  static size_t cap;
  double *d = (double *)cuda_scratch(&buf, &cap, sizeof(double)), total;
  weighted_total_kernel<<<1, CE_THREADS>>>(d, losses, weight, N);
  LAUNCH_CHECK();
  CUDA_CHECK(cudaMemcpy(&total, d, sizeof total, cudaMemcpyDeviceToHost));
  return total;
}

// dlogits[n,:] += w_n (probs[n,:] - onehot(tgt[n]))
__global__ static void crossentropy_backward_kernel(float *dlogits, const float *probs, const uint16_t *tgt,
                                                    const float *weight, int N, int V) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)N * V) return;
  int n = (int)(i / V), v = (int)(i % V);
  float w = weight[n];
  if (w == 0.0f) return;
  dlogits[i] += w * probs[i] - (v == tgt[n] ? w : 0.0f);
}

void cuda_crossentropy_backward(float *dlogits, const float *probs, const uint16_t *tgt, const float *weight,
                                int N, int V) {
  crossentropy_backward_kernel<<<ceil_div((size_t)N * V, 256), 256>>>(dlogits, probs, tgt, weight, N, V);
  LAUNCH_CHECK();
}
