// attention_decode: one new query per sequence against its key/value cache (sampling) on the GPU,
// one block per (sequence, head): scores, their softmax, the weighted sum of values; and the
// append of this position's keys and values to the cache. See kernels/ops.h.
#include "kernels/cuda/cuda.cuh"

#define DECODE_THREADS 128

__global__ static void __launch_bounds__(DECODE_THREADS)
decode_kernel(float *out, float *scores, const float *q, int q_stride, const float *kc, const float *vc,
              int NH, int hd, int n, int cap) {
  __shared__ float red[DECODE_THREADS / 32];
  __shared__ float bcast;
  const int b = blockIdx.x / NH, h = blockIdx.x % NH, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const float scale = 1.0f / sqrtf((float)hd);
  const float *qh = q + (size_t)b * q_stride + h * hd;
  const size_t head = ((size_t)b * NH + h) * cap;
  const float *k = kc + head * hd, *v = vc + head * hd;
  float *s = scores + head;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < n; j += DECODE_THREADS) {
    float d = 0.0f;
    for (int e = 0; e < hd; e++) d += qh[e] * k[(size_t)j * hd + e];
    s[j] = d * scale;
    mx = fmaxf(mx, s[j]);
  }
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (lane == 0) red[warp] = mx;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = red[0];
    for (int w = 1; w < DECODE_THREADS / 32; w++) m = fmaxf(m, red[w]);
    bcast = m;
  }
  __syncthreads();
  mx = bcast;
  float sum = 0.0f;
  for (int j = threadIdx.x; j < n; j += DECODE_THREADS) {
    s[j] = expf(s[j] - mx);
    sum += s[j];
  }
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  __syncthreads();
  if (lane == 0) red[warp] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = 0.0f;
    for (int w = 0; w < DECODE_THREADS / 32; w++) t += red[w];
    bcast = t;
  }
  __syncthreads();  // also makes every s[j] visible to the block
  float inv = 1.0f / bcast;
  float *o = out + (size_t)b * NH * hd + h * hd;
  for (int e = threadIdx.x; e < hd; e += DECODE_THREADS) {
    float a = 0.0f;
    for (int j = 0; j < n; j++) a += s[j] * inv * v[(size_t)j * hd + e];
    o[e] = a;
  }
}

void cuda_attention_decode_forward(float *out, float *scores, const float *q, int q_stride, const float *kc,
                                   const float *vc, int B, int NH, int hd, int n, int cap) {
  decode_kernel<<<B * NH, DECODE_THREADS>>>(out, scores, q, q_stride, kc, vc, NH, hd, n, cap);
  LAUNCH_CHECK();
}

// kc[b,h,t,:] = k of qkv row b, head h; the same for v
__global__ static void kv_append_kernel(float *kc, float *vc, const float *qkv, int B, int NH, int hd, int cap,
                                        int t) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)B * NH * hd) return;
  int e = (int)(i % hd), h = (int)(i / hd % NH), b = (int)(i / ((size_t)hd * NH));
  size_t C = (size_t)NH * hd, row = (((size_t)b * NH + h) * cap + t) * hd + e;
  kc[row] = qkv[(size_t)b * 3 * C + C + h * hd + e];
  vc[row] = qkv[(size_t)b * 3 * C + 2 * C + h * hd + e];
}

void cuda_kvcache_append(float *kc, float *vc, const float *qkv, int B, int NH, int hd, int cap, int t) {
  kv_append_kernel<<<ceil_div((size_t)B * NH * hd, 256), 256>>>(kc, vc, qkv, B, NH, hd, cap, t);
  LAUNCH_CHECK();
}
