// attention: multi-head scaled dot-product attention on the GPU, causal (AR) or bidirectional
// (BERT). Two paths:
//  - for training (att given, the backward follows): the probabilities are materialised per
//    example, S = q k^T / sqrt(hd) and y = P v as batched cuBLASLt products over the heads, a
//    row softmax between (masked entries written 0, as the CPU's), and the backward of
//    kernels/cpu/attention.c as products and one elementwise kernel;
//  - for inference (att NULL: features, loss, sampling's prefix): a flash-style kernel that
//    never forms T x T, one thread per query row running online_softmax_step (kernels/math.h)
//    over key/value tiles in shared memory.
// qkv [B,T,3C] (q | k | v, head h at channels h*hd..), out [B,T,C]. See kernels/ops.h.
#include "kernels/cuda/cuda.cuh"

size_t cuda_attention_floats(int B, int NH, int T, bool keep) {
  return keep ? (size_t)B * NH * T * T : 0;
}

// P = softmax of each row of S (rows of T, NH*T rows an example), the causal mask zeroing j > i
__global__ static void softmax_rows_kernel(float *att, int rows, int T, int causal) {
  int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (r >= rows) return;
  float *row = att + (size_t)r * T;
  int n = causal ? r % T + 1 : T;
  float mx = -INFINITY;
  for (int j = lane; j < n; j += 32) mx = fmaxf(mx, row[j]);
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float sum = 0.0f;
  for (int j = lane; j < n; j += 32) {
    float e = expf(row[j] - mx);
    row[j] = e;
    sum += e;
  }
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  float inv = 1.0f / sum;
  for (int j = lane; j < T; j += 32) row[j] = j < n ? row[j] * inv : 0.0f;
}

// dS = P (dP - rowsum(P dP)) * scale, in place over dP
__global__ static void softmax_backward_rows_kernel(float *datt, const float *att, int rows, int T, float scale) {
  int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float *p = att + (size_t)r * T;
  float *d = datt + (size_t)r * T;
  float dot = 0.0f;
  for (int j = lane; j < T; j += 32) dot += p[j] * d[j];
  for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
  for (int j = lane; j < T; j += 32) d[j] = p[j] * (d[j] - dot) * scale;
}

#define FLASH_ROWS 64  // query rows (threads) per block
#define FLASH_KEYS 32  // keys per shared-memory tile

template <int HD>
__global__ static void __launch_bounds__(FLASH_ROWS)
flash_forward_kernel(float *out, const float *qkv, int T, int C, int NH, int causal, float scale) {
  __shared__ float ks[FLASH_KEYS][HD], vs[FLASH_KEYS][HD];
  const int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * FLASH_ROWS, i = i0 + threadIdx.x;
  const size_t C3 = 3 * (size_t)C;
  const float *base = qkv + (size_t)b * T * C3 + h * HD;
  float q[HD], acc[HD];
  const bool live = i < T;
#pragma unroll
  for (int e = 0; e < HD; e++) {
    q[e] = live ? base[(size_t)i * C3 + e] * scale : 0.0f;
    acc[e] = 0.0f;
  }
  float mx = -INFINITY, sum = 0.0f;
  int last = causal ? min(T, i0 + FLASH_ROWS) : T;  // keys this block can see
  for (int j0 = 0; j0 < last; j0 += FLASH_KEYS) {
    __syncthreads();
    for (int x = threadIdx.x; x < FLASH_KEYS * HD; x += FLASH_ROWS) {
      int j = j0 + x / HD, e = x % HD;
      ks[x / HD][e] = j < T ? base[(size_t)j * C3 + C + e] : 0.0f;
      vs[x / HD][e] = j < T ? base[(size_t)j * C3 + 2 * C + e] : 0.0f;
    }
    __syncthreads();
    int nj = min(FLASH_KEYS, (causal ? i + 1 : T) - j0);
    if (!live) continue;
    for (int jj = 0; jj < nj; jj++) {
      float s = 0.0f;
#pragma unroll
      for (int e = 0; e < HD; e++) s += q[e] * ks[jj][e];
      float p, rescale = online_softmax_step(&mx, &sum, s, &p);
#pragma unroll
      for (int e = 0; e < HD; e++) acc[e] = acc[e] * rescale + p * vs[jj][e];
    }
  }
  if (!live) return;
  float inv = 1.0f / sum;
  float *y = out + ((size_t)b * T + i) * C + h * HD;
#pragma unroll
  for (int e = 0; e < HD; e++) y[e] = acc[e] * inv;
}

static bool flash_forward(float *out, const float *qkv, int B, int T, int C, int NH, int causal) {
  int hd = C / NH;
  float scale = 1.0f / sqrtf((float)hd);
  dim3 grid(ceil_div(T, FLASH_ROWS), NH, B);
  switch (hd) {
    case 16: flash_forward_kernel<16><<<grid, FLASH_ROWS>>>(out, qkv, T, C, NH, causal, scale); break;
    case 32: flash_forward_kernel<32><<<grid, FLASH_ROWS>>>(out, qkv, T, C, NH, causal, scale); break;
    case 64: flash_forward_kernel<64><<<grid, FLASH_ROWS>>>(out, qkv, T, C, NH, causal, scale); break;
    case 96: flash_forward_kernel<96><<<grid, FLASH_ROWS>>>(out, qkv, T, C, NH, causal, scale); break;
    case 128: flash_forward_kernel<128><<<grid, FLASH_ROWS>>>(out, qkv, T, C, NH, causal, scale); break;
    default: return false;  // other head sizes take the materialising path
  }
  LAUNCH_CHECK();
  return true;
}

void cuda_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH, int causal) {
  if (!att && flash_forward(out, qkv, B, T, C, NH, causal)) return;
  int hd = C / NH, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hd);
  static void *scratch;
  static size_t cap;
  size_t TT = (size_t)T * T;
  // without att (an unusual head size at inference) one example's probabilities at a time
  float *a = att ? att : (float *)cuda_scratch(&scratch, &cap, (size_t)NH * TT * sizeof(float));
  for (int b = 0; b < B; b++) {
    const float *q = qkv + (size_t)b * T * C3, *k = q + C, *v = q + 2 * C;
    float *ab = att ? a + (size_t)b * NH * TT : a, *y = out + (size_t)b * T * C;
    // S[h] = q_h k_h^T * scale   (row-major [Tq, Tk], as a linear layer with w = k)
    cuda_gemm(true, false, T, T, hd, scale, k, C3, hd, q, C3, hd, 0.0f, ab, T, (long long)TT, NH);
    softmax_rows_kernel<<<ceil_div((size_t)NH * T, 8), 256>>>(ab, NH * T, T, causal);
    LAUNCH_CHECK();
    // y_h = P_h v_h  (column-major y^T = v^T P^T)
    cuda_gemm(false, false, hd, T, T, 1.0f, v, C3, hd, ab, T, (long long)TT, 0.0f, y, C, hd, NH);
  }
}

void cuda_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                             int B, int T, int C, int NH, int causal) {
  (void)causal;  // masked entries have P = 0, so their gradient is 0 through dS = P (...)
  int hd = C / NH, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hd);
  size_t TT = (size_t)T * T;
  for (int b = 0; b < B; b++) {
    const float *q = qkv + (size_t)b * T * C3, *k = q + C, *v = q + 2 * C;
    float *dq = dqkv + (size_t)b * T * C3, *dk = dq + C, *dv = dq + 2 * C;
    const float *p = att + (size_t)b * NH * TT, *dy = dout + (size_t)b * T * C;
    float *dp = datt + (size_t)b * NH * TT;
    // dP = dy v^T ; dv += P^T dy
    cuda_gemm(true, false, T, T, hd, 1.0f, v, C3, hd, dy, C, hd, 0.0f, dp, T, (long long)TT, NH);
    cuda_gemm(false, true, hd, T, T, 1.0f, dy, C, hd, p, T, (long long)TT, 1.0f, dv, C3, hd, NH);
    // dS = P (dP - rowsum(P dP)) / sqrt(hd)
    softmax_backward_rows_kernel<<<ceil_div((size_t)NH * T, 8), 256>>>(dp, p, NH * T, T, scale);
    LAUNCH_CHECK();
    // dq += dS k ; dk += dS^T q
    cuda_gemm(false, false, hd, T, T, 1.0f, k, C3, hd, dp, T, (long long)TT, 1.0f, dq, C3, hd, NH);
    cuda_gemm(false, true, hd, T, T, 1.0f, q, C3, hd, dp, T, (long long)TT, 1.0f, dk, C3, hd, NH);
  }
}
