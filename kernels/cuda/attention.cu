// attention: multi-head scaled dot-product attention on the GPU, causal (AR) or bidirectional
// (BERT). Two paths:
//  - flash (the default, for inference and training): kernels that never form T x T. The forward
//    runs online_softmax_step (kernels/math.h) over key/value tiles in shared memory, in fp32 one
//    thread per query row, in bf16 the same recurrence a tile at a time with the two products on
//    the tensor cores (WMMA); for training, the fp32 kernel under either precision, which also
//    saves each row's log-sum-exp (att [B,NH,T]).
//    The backward recomputes the probabilities from it (FlashAttention-2's scheme): D = rowsum(dy
//    * y) per row, then one kernel per query row for dq and one per key row for dk and dv, so no
//    atomics, each with attn_prob and attn_dscore of kernels/math.h, in fp32 under either
//    precision;
//  - materialising (IGPT_CUDA_ATTENTION=materialise, and head sizes without a flash kernel): the
//    on-GPU reference. q, k, v split into [B,NH,T,hd] so that S = q k^T / sqrt(hd) and y = P v
//    are each one strided batch of cuBLASLt products over every (example, head), a row softmax
//    between (masked entries written 0, as the CPU's), and the backward of
//    kernels/cpu/attention.c as products and one elementwise kernel.
// qkv [B,T,3C] (q | k | v, head h at channels h*hd..), out [B,T,C]. See kernels/ops.h.
#include "kernels/cuda/cuda.cuh"
#include <cuda_bf16.h>
#include <mma.h>
#include <string.h>

static bool flash_train(int hd);

size_t cuda_attention_floats(int B, int NH, int T, int hd, bool keep) {
  if (!keep) return 0;
  return flash_train(hd) ? (size_t)B * NH * T : (size_t)B * NH * T * T;
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

// Keys and values j0 .. j0 + FLASH_KEYS of one head into shared memory (zeros past T), by the
// block's FLASH_ROWS threads, between barriers: the tile loop of the flash forward and of dq.
template <int HD>
__device__ static void load_kv_tile(float (*ks)[HD], float (*vs)[HD], const float *base, int j0, int T, int C) {
  const size_t C3 = 3 * (size_t)C;
  __syncthreads();  // the previous tile is no longer read
  for (int x = threadIdx.x; x < FLASH_KEYS * HD; x += FLASH_ROWS) {
    int j = j0 + x / HD, e = x % HD;
    ks[x / HD][e] = j < T ? base[(size_t)j * C3 + C + e] : 0.0f;
    vs[x / HD][e] = j < T ? base[(size_t)j * C3 + 2 * C + e] : 0.0f;
  }
  __syncthreads();
}

template <int HD>
__global__ static void __launch_bounds__(FLASH_ROWS)
flash_forward_kernel(float *out, float *lse, const float *qkv, int T, int C, int NH, int causal, float scale) {
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
    load_kv_tile<HD>(ks, vs, base, j0, T, C);
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
  if (lse) lse[((size_t)b * NH + h) * T + i] = softmax_lse(mx, sum);
}

// The same flash-style forward on the tensor cores, for bf16 precision: a block of 4 warps takes
// 64 query rows of one head (16 a warp), q k^T and P v are bf16 WMMA products with fp32
// accumulation over 64-key tiles in shared memory, and the online softmax runs per tile (the tile
// form of online_softmax_step: one running max and sum per row, the output rescaled once a tile);
// two lanes share a row. The running output lives in shared memory in fp32 (WMMA fragments do not
// expose rows, so the rescale happens there).
#define TC_ROWS 64
#define TC_KEYS 64

template <int HD>
struct tc_smem {
  static constexpr size_t q = 0, k = q + TC_ROWS * HD * 2, v = k + TC_KEYS * HD * 2, s = v + TC_KEYS * HD * 2,
                          p = s + 4 * 16 * TC_KEYS * 4, o = p + 4 * 16 * TC_KEYS * 2, bytes = o + 4 * 16 * HD * 4;
};

template <int HD>
__global__ static void __launch_bounds__(128)
flash_tc_kernel(float *out, const float *qkv, int T, int C, int causal, float scale) {
  using namespace nvcuda;
  extern __shared__ __align__(128) unsigned char smem[];
  typedef tc_smem<HD> L;
  __nv_bfloat16 *Qs = (__nv_bfloat16 *)(smem + L::q), *Ks = (__nv_bfloat16 *)(smem + L::k);
  __nv_bfloat16 *Vs = (__nv_bfloat16 *)(smem + L::v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float *Sw = (float *)(smem + L::s) + warp * 16 * TC_KEYS, *Ow = (float *)(smem + L::o) + warp * 16 * HD;
  __nv_bfloat16 *Pw = (__nv_bfloat16 *)(smem + L::p) + warp * 16 * TC_KEYS;
  const int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * TC_ROWS;
  const size_t C3 = 3 * (size_t)C;
  const float *base = qkv + (size_t)b * T * C3 + (size_t)h * HD;
  for (int x = threadIdx.x; x < TC_ROWS * HD; x += blockDim.x) {
    int r = x / HD, e = x % HD, i = i0 + r;
    Qs[x] = __float2bfloat16(i < T ? base[(size_t)i * C3 + e] * scale : 0.0f);
  }
  for (int x = lane; x < 16 * HD; x += 32) Ow[x] = 0.0f;
  const int r = lane / 2, half = lane % 2, i = i0 + warp * 16 + r;  // this lane's row, half of its columns
  float mx = -INFINITY, sum = 0.0f;
  const int last = causal ? min(T, i0 + TC_ROWS) : T;
  for (int j0 = 0; j0 < last; j0 += TC_KEYS) {
    __syncthreads();  // the previous tile's K, V are no longer read
    for (int x = threadIdx.x; x < TC_KEYS * HD; x += blockDim.x) {
      int j = j0 + x / HD, e = x % HD;
      Ks[x] = __float2bfloat16(j < T ? base[(size_t)j * C3 + C + e] : 0.0f);
      Vs[x] = __float2bfloat16(j < T ? base[(size_t)j * C3 + 2 * C + e] : 0.0f);
    }
    __syncthreads();
    // S = q k^T for this warp's 16 rows and the tile's 64 keys
    for (int nt = 0; nt < TC_KEYS / 16; nt++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int kt = 0; kt < HD / 16; kt++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, Qs + (warp * 16) * HD + kt * 16, HD);
        wmma::load_matrix_sync(fb, Ks + (nt * 16) * HD + kt * 16, HD);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Sw + nt * 16, acc, TC_KEYS, wmma::mem_row_major);
    }
    __syncwarp();
    // the tile's online-softmax step for this lane's row: 32 columns here, 32 on the partner lane
    const float *srow = Sw + r * TC_KEYS + half * 32;
    float tmax = -INFINITY;
    for (int c = 0; c < 32; c++) {
      int j = j0 + half * 32 + c;
      bool ok = j < T && i < T && (!causal || j <= i);
      if (ok) tmax = fmaxf(tmax, srow[c]);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    float m_new = fmaxf(mx, tmax);
    float rescale = m_new == -INFINITY ? 1.0f : expf(mx - m_new), tsum = 0.0f;
    __nv_bfloat16 *prow = Pw + r * TC_KEYS + half * 32;
    for (int c = 0; c < 32; c++) {
      int j = j0 + half * 32 + c;
      bool ok = j < T && i < T && (!causal || j <= i);
      float pv = ok ? expf(srow[c] - m_new) : 0.0f;
      tsum += pv;
      prow[c] = __float2bfloat16(pv);
    }
    tsum += __shfl_xor_sync(0xffffffffu, tsum, 1);
    sum = sum * rescale + tsum;
    mx = m_new;
    float *orow = Ow + r * HD + half * (HD / 2);
    for (int e = 0; e < HD / 2; e++) orow[e] *= rescale;
    __syncwarp();
    // O += P v
    for (int dt = 0; dt < HD / 16; dt++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, Ow + dt * 16, HD, wmma::mem_row_major);
      for (int kt = 0; kt < TC_KEYS / 16; kt++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, Pw + kt * 16, TC_KEYS);
        wmma::load_matrix_sync(fb, Vs + (kt * 16) * HD + dt * 16, HD);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Ow + dt * 16, acc, HD, wmma::mem_row_major);
    }
    __syncwarp();
  }
  if (i >= T) return;
  float inv = 1.0f / sum, *y = out + ((size_t)b * T + i) * C + (size_t)h * HD + half * (HD / 2);
  const float *orow = Ow + r * HD + half * (HD / 2);
  for (int e = 0; e < HD / 2; e++) y[e] = orow[e] * inv;
}

template <int HD>
static void flash_tc(float *out, const float *qkv, int B, int T, int C, int NH, int causal, float scale) {
  static bool raised;
  if (!raised) {  // over the default 48 KB of dynamic shared memory
    CUDA_CHECK(cudaFuncSetAttribute(flash_tc_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)tc_smem<HD>::bytes));
    raised = true;
  }
  dim3 grid(ceil_div(T, TC_ROWS), NH, B);
  flash_tc_kernel<HD><<<grid, 128, tc_smem<HD>::bytes>>>(out, qkv, T, C, causal, scale);
}

// IGPT_CUDA_ATTENTION picks a path, for comparing them on a GPU: simt or tc the flash forward's
// kernel (default: tc under bf16, simt under fp32), materialise the materialising path for
// inference and training.
static int attention_path(void) {
  static int path = -1;
  if (path < 0) {
    const char *e = getenv("IGPT_CUDA_ATTENTION");
    path = !e ? 0 : !strcmp(e, "simt") ? 1 : !strcmp(e, "tc") ? 2 : !strcmp(e, "materialise") ? 3 : 0;
  }
  return path;
}

static bool flash_head(int hd) { return hd == 16 || hd == 32 || hd == 64 || hd == 96 || hd == 128; }

// Training takes the flash path too: it keeps [B,NH,T] a layer where materialising keeps
// [B,NH,T,T] (iGPT-S at batch 32: 24 GiB over its 24 layers; iGPT-L: 96 GiB over 48). Which is
// the faster at small shapes (the materialising products run on the tensor cores, the flash
// backward is fp32 SIMT) is for a GPU to measure: gpu-check.sh times the step both ways. A pure
// function of the head size and the environment, so forward, backward and the buffer sizes agree.
static bool flash_train(int hd) { return attention_path() != 3 && flash_head(hd); }

// The flash forward; lse [B,NH,T] (NULL at inference) gets each row's log-sum-exp for the backward.
// Training runs the fp32 kernel under either precision: the backward recomputes the scores in
// fp32, and a log-sum-exp from bf16 scores would leave its probabilities off by bf16's rounding.
static bool flash_forward(float *out, float *lse, const float *qkv, int B, int T, int C, int NH, int causal) {
  int hd = C / NH, path = attention_path();
  float scale = 1.0f / sqrtf((float)hd);
  if (path == 3 || !flash_head(hd)) return false;
  if (!lse && (path == 2 || (path == 0 && cuda_g.bf16)) && (hd == 64 || hd == 96 || hd == 128)) {
    if (hd == 64) flash_tc<64>(out, qkv, B, T, C, NH, causal, scale);
    else if (hd == 96) flash_tc<96>(out, qkv, B, T, C, NH, causal, scale);
    else flash_tc<128>(out, qkv, B, T, C, NH, causal, scale);
    LAUNCH_CHECK();
    return true;
  }
  dim3 grid(ceil_div(T, FLASH_ROWS), NH, B);
  switch (hd) {
    case 16: flash_forward_kernel<16><<<grid, FLASH_ROWS>>>(out, lse, qkv, T, C, NH, causal, scale); break;
    case 32: flash_forward_kernel<32><<<grid, FLASH_ROWS>>>(out, lse, qkv, T, C, NH, causal, scale); break;
    case 64: flash_forward_kernel<64><<<grid, FLASH_ROWS>>>(out, lse, qkv, T, C, NH, causal, scale); break;
    case 96: flash_forward_kernel<96><<<grid, FLASH_ROWS>>>(out, lse, qkv, T, C, NH, causal, scale); break;
    default: flash_forward_kernel<128><<<grid, FLASH_ROWS>>>(out, lse, qkv, T, C, NH, causal, scale); break;
  }
  LAUNCH_CHECK();
  return true;
}

// D [B,NH,T] = rowsum(dy * y) over each head's channels: a warp per row.
__global__ static void flash_rowdot_kernel(float *D, const float *dout, const float *out, int B, int T, int C,
                                           int NH) {
  size_t r = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = threadIdx.x % 32, hd = C / NH;
  if (r >= (size_t)B * NH * T) return;
  int i = (int)(r % T), h = (int)(r / T % NH);
  size_t b = r / T / NH, at = (b * T + i) * C + (size_t)h * hd;
  float s = 0.0f;
  for (int e = lane; e < hd; e += 32) s += dout[at + e] * out[at + e];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (!lane) D[r] = s;
}

// dq: one thread per query row i, over key/value tiles in shared memory (causal: keys j <= i).
// dq_i = scale * sum_j dS_ij k_j, dS_ij = attn_dscore(P_ij, dy_i . v_j, D_i), P_ij = attn_prob(s, lse_i).
template <int HD>
__global__ static void __launch_bounds__(FLASH_ROWS)
flash_backward_dq_kernel(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *D, int T,
                         int C, int NH, int causal, float scale) {
  __shared__ float ks[FLASH_KEYS][HD], vs[FLASH_KEYS][HD];
  const int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * FLASH_ROWS, i = i0 + threadIdx.x;
  const size_t C3 = 3 * (size_t)C, row = ((size_t)b * NH + h) * T + i;
  const float *base = qkv + (size_t)b * T * C3 + h * HD, *dy = dout + (size_t)b * T * C + h * HD;
  const bool live = i < T;
  float q[HD], g[HD], dq[HD];
#pragma unroll
  for (int e = 0; e < HD; e++) {
    q[e] = live ? base[(size_t)i * C3 + e] * scale : 0.0f;
    g[e] = live ? dy[(size_t)i * C + e] : 0.0f;
    dq[e] = 0.0f;
  }
  const float l = live ? lse[row] : 0.0f, d = live ? D[row] : 0.0f;
  const int last = causal ? min(T, i0 + FLASH_ROWS) : T;
  for (int j0 = 0; j0 < last; j0 += FLASH_KEYS) {
    load_kv_tile<HD>(ks, vs, base, j0, T, C);
    int nj = min(FLASH_KEYS, (causal ? i + 1 : T) - j0);
    if (!live) continue;
    for (int jj = 0; jj < nj; jj++) {
      float s = 0.0f, dp = 0.0f;
#pragma unroll
      for (int e = 0; e < HD; e++) s += q[e] * ks[jj][e], dp += g[e] * vs[jj][e];
      float ds = attn_dscore(attn_prob(s, l), dp, d);
#pragma unroll
      for (int e = 0; e < HD; e++) dq[e] += ds * ks[jj][e];
    }
  }
  if (!live) return;
  float *o = dqkv + ((size_t)b * T + i) * C3 + h * HD;
#pragma unroll
  for (int e = 0; e < HD; e++) o[e] += dq[e] * scale;  // accumulate, as every backward does
}

// dk, dv: one thread per key row j, over tiles of queries (q pre-scaled), dy, lse and D in shared
// memory (causal: queries i >= j). dv_j = sum_i P_ij dy_i, dk_j = sum_i dS_ij (scale q_i).
template <int HD>
__global__ static void __launch_bounds__(FLASH_ROWS)
flash_backward_dkdv_kernel(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *D,
                           int T, int C, int NH, int causal, float scale) {
  __shared__ float qs[FLASH_KEYS][HD], gs[FLASH_KEYS][HD], ls[FLASH_KEYS], ds_[FLASH_KEYS];
  const int b = blockIdx.z, h = blockIdx.y, j0 = blockIdx.x * FLASH_ROWS, j = j0 + threadIdx.x;
  const size_t C3 = 3 * (size_t)C, rows = ((size_t)b * NH + h) * T;
  const float *base = qkv + (size_t)b * T * C3 + h * HD, *dy = dout + (size_t)b * T * C + h * HD;
  const bool live = j < T;
  float k[HD], v[HD], dk[HD], dv[HD];
#pragma unroll
  for (int e = 0; e < HD; e++) {
    k[e] = live ? base[(size_t)j * C3 + C + e] : 0.0f;
    v[e] = live ? base[(size_t)j * C3 + 2 * C + e] : 0.0f;
    dk[e] = dv[e] = 0.0f;
  }
  for (int i0 = causal ? j0 : 0; i0 < T; i0 += FLASH_KEYS) {  // causal: no query below j0 sees this block
    __syncthreads();
    for (int x = threadIdx.x; x < FLASH_KEYS * HD; x += FLASH_ROWS) {
      int i = i0 + x / HD, e = x % HD;
      qs[x / HD][e] = i < T ? base[(size_t)i * C3 + e] * scale : 0.0f;
      gs[x / HD][e] = i < T ? dy[(size_t)i * C + e] : 0.0f;
    }
    for (int x = threadIdx.x; x < FLASH_KEYS; x += FLASH_ROWS) {
      ls[x] = i0 + x < T ? lse[rows + i0 + x] : 0.0f;
      ds_[x] = i0 + x < T ? D[rows + i0 + x] : 0.0f;
    }
    __syncthreads();
    if (!live) continue;
    int ni = min(FLASH_KEYS, T - i0);
    for (int ii = causal ? max(0, j - i0) : 0; ii < ni; ii++) {
      float s = 0.0f, dp = 0.0f;
#pragma unroll
      for (int e = 0; e < HD; e++) s += qs[ii][e] * k[e], dp += gs[ii][e] * v[e];
      float p = attn_prob(s, ls[ii]), ds = attn_dscore(p, dp, ds_[ii]);
#pragma unroll
      for (int e = 0; e < HD; e++) dv[e] += p * gs[ii][e], dk[e] += ds * qs[ii][e];
    }
  }
  if (!live) return;
  float *o = dqkv + ((size_t)b * T + j) * C3 + h * HD;
#pragma unroll
  for (int e = 0; e < HD; e++) o[C + e] += dk[e], o[2 * C + e] += dv[e];
}

template <int HD>
static void flash_backward_heads(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *D,
                                 int B, int T, int C, int NH, int causal, float scale) {
  dim3 grid(ceil_div(T, FLASH_ROWS), NH, B);
  flash_backward_dq_kernel<HD><<<grid, FLASH_ROWS>>>(dqkv, dout, qkv, lse, D, T, C, NH, causal, scale);
  LAUNCH_CHECK();
  flash_backward_dkdv_kernel<HD><<<grid, FLASH_ROWS>>>(dqkv, dout, qkv, lse, D, T, C, NH, causal, scale);
  LAUNCH_CHECK();
}

// The flash backward from the forward's output and log-sum-exp; D goes into the datt scratch.
static void flash_backward(float *dqkv, float *D, const float *dout, const float *out, const float *qkv,
                           const float *lse, int B, int T, int C, int NH, int causal) {
  const int hd = C / NH;
  const float scale = 1.0f / sqrtf((float)hd);
  const size_t rows = (size_t)B * NH * T;
  flash_rowdot_kernel<<<ceil_div(rows, 8), 256>>>(D, dout, out, B, T, C, NH);
  LAUNCH_CHECK();
  switch (hd) {
    case 16: flash_backward_heads<16>(dqkv, dout, qkv, lse, D, B, T, C, NH, causal, scale); break;
    case 32: flash_backward_heads<32>(dqkv, dout, qkv, lse, D, B, T, C, NH, causal, scale); break;
    case 64: flash_backward_heads<64>(dqkv, dout, qkv, lse, D, B, T, C, NH, causal, scale); break;
    case 96: flash_backward_heads<96>(dqkv, dout, qkv, lse, D, B, T, C, NH, causal, scale); break;
    default: flash_backward_heads<128>(dqkv, dout, qkv, lse, D, B, T, C, NH, causal, scale); break;
  }
}

// qkv [B,T,3C] -> q, k, v, each [B,NH,T,hd] contiguous, so one strided batch covers every head of
// every example (one product launch instead of one per example)
__global__ static void split_heads_kernel(float *q, float *k, float *v, const float *qkv, int B, int T, int NH,
                                          int hd) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)B * NH * T * hd) return;
  int e = (int)(i % hd), t = (int)(i / hd % T), h = (int)(i / ((size_t)hd * T) % NH);
  size_t b = i / ((size_t)hd * T * NH), C = (size_t)NH * hd;
  const float *src = qkv + (b * T + t) * 3 * C + (size_t)h * hd + e;
  q[i] = src[0], k[i] = src[C], v[i] = src[2 * C];
}

// x [B,T,C] <-> y [B,NH,T,hd]: to_heads gathers, otherwise scatters (accumulate: +=), with the
// row stride of the [B,T,.] side given (C for atty, 3C for a third of dqkv)
__global__ static void heads_kernel(float *bt, const float *bh_in, float *bh_out, const float *bt_in, int B, int T,
                                    int NH, int hd, int stride, bool accumulate) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)B * NH * T * hd) return;
  int e = (int)(i % hd), t = (int)(i / hd % T), h = (int)(i / ((size_t)hd * T) % NH);
  size_t b = i / ((size_t)hd * T * NH), j = (b * T + t) * stride + (size_t)h * hd + e;
  if (bh_out) bh_out[i] = bt_in[j];
  else if (accumulate) bt[j] += bh_in[i];
  else bt[j] = bh_in[i];
}

static float *scratch_heads(int slot, size_t n) {
  static void *buf[2];
  static size_t cap[2];
  return (float *)cuda_scratch(&buf[slot], &cap[slot], n * sizeof(float));
}

void cuda_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH, int causal) {
  // training on the flash path: att holds the rows' log-sum-exp (cuda_attention_floats)
  if (att ? flash_train(C / NH) && flash_forward(out, att, qkv, B, T, C, NH, causal)
          : flash_forward(out, NULL, qkv, B, T, C, NH, causal))
    return;
  const int hd = C / NH, BH = B * NH;
  const float scale = 1.0f / sqrtf((float)hd);
  const size_t TT = (size_t)T * T, BTC = (size_t)B * T * C, th = (size_t)T * hd;
  float *a = att;
  if (!a) {  // an unusual head size at inference: the probabilities in a scratch buffer
    static void *buf;
    static size_t cap;
    a = (float *)cuda_scratch(&buf, &cap, (size_t)BH * TT * sizeof(float));
  }
  float *q = scratch_heads(0, 4 * BTC), *k = q + BTC, *v = k + BTC, *y = v + BTC;
  split_heads_kernel<<<ceil_div(BTC, 256), 256>>>(q, k, v, qkv, B, T, NH, hd);
  LAUNCH_CHECK();
  // S = q k^T / sqrt(hd) for every (example, head): row-major [Tq, Tk], a linear layer with w = k
  cuda_gemm(true, false, T, T, hd, scale, k, hd, th, q, hd, th, 0.0f, a, T, (long long)TT, BH);
  softmax_rows_kernel<<<ceil_div((size_t)BH * T, 8), 256>>>(a, BH * T, T, causal);
  LAUNCH_CHECK();
  // y = P v  (column-major y^T = v^T P^T)
  cuda_gemm(false, false, hd, T, T, 1.0f, v, hd, th, a, T, (long long)TT, 0.0f, y, hd, th, BH);
  heads_kernel<<<ceil_div(BTC, 256), 256>>>(out, y, NULL, NULL, B, T, NH, hd, C, false);
  LAUNCH_CHECK();
}

void cuda_attention_backward(float *dqkv, float *datt, const float *dout, const float *out, const float *qkv,
                             const float *att, int B, int T, int C, int NH, int causal) {
  if (flash_train(C / NH)) {
    flash_backward(dqkv, datt, dout, out, qkv, att, B, T, C, NH, causal);
    return;
  }
  // materialising: masked entries have P = 0, so their gradient is 0 through dS = P (...)
  const int hd = C / NH, BH = B * NH;
  const float scale = 1.0f / sqrtf((float)hd);
  const size_t TT = (size_t)T * T, BTC = (size_t)B * T * C, th = (size_t)T * hd;
  float *q = scratch_heads(0, 4 * BTC), *k = q + BTC, *v = k + BTC, *dy = v + BTC;
  float *dq = scratch_heads(1, 3 * BTC), *dk = dq + BTC, *dv = dk + BTC;
  split_heads_kernel<<<ceil_div(BTC, 256), 256>>>(q, k, v, qkv, B, T, NH, hd);
  heads_kernel<<<ceil_div(BTC, 256), 256>>>(NULL, NULL, dy, dout, B, T, NH, hd, C, false);
  LAUNCH_CHECK();
  // dP = dy v^T ; dv = P^T dy
  cuda_gemm(true, false, T, T, hd, 1.0f, v, hd, th, dy, hd, th, 0.0f, datt, T, (long long)TT, BH);
  cuda_gemm(false, true, hd, T, T, 1.0f, dy, hd, th, att, T, (long long)TT, 0.0f, dv, hd, th, BH);
  // dS = P (dP - rowsum(P dP)) / sqrt(hd)
  softmax_backward_rows_kernel<<<ceil_div((size_t)BH * T, 8), 256>>>(datt, att, BH * T, T, scale);
  LAUNCH_CHECK();
  // dq = dS k ; dk = dS^T q
  cuda_gemm(false, false, hd, T, T, 1.0f, k, hd, th, datt, T, (long long)TT, 0.0f, dq, hd, th, BH);
  cuda_gemm(false, true, hd, T, T, 1.0f, q, hd, th, datt, T, (long long)TT, 0.0f, dk, hd, th, BH);
  // accumulate into dqkv's q | k | v thirds, as every backward does
  const float *parts[3] = {dq, dk, dv};
  for (int i = 0; i < 3; i++) {
    heads_kernel<<<ceil_div(BTC, 256), 256>>>(dqkv + (size_t)i * C, parts[i], NULL, NULL, B, T, NH, hd, 3 * C, true);
    LAUNCH_CHECK();
  }
}
