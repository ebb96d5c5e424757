// matmul: the linear layers y = x W^T + b through cuBLASLt, and cuda_gemm, the one product every
// CUDA op uses (attention's batched ones too). Storage is fp32 throughout (fp32 master weights,
// fp32 activations); bf16 precision asks cuBLASLt for CUBLAS_COMPUTE_32F_FAST_16BF, which rounds
// the inputs to bf16 for the tensor cores and accumulates in fp32 (or, where it offers no such
// algorithm, multiplies bf16 copies of the inputs), fp32 precision for CUBLAS_COMPUTE_32F (no
// TF32), which tracks the CPU reference. Descriptors and algorithms are made once per shape,
// alignment and precision and cached (sampling calls the same few shapes thousands of times).
// Row-major y[N,OC] = x[N,C] W[OC,C]^T is column-major y^T = W x^T: op(A) = W^T.
#include "kernels/cuda/cuda.cuh"
#include <cuda_bf16.h>
#include <string.h>

static int alignment(const void *p) {
  uintptr_t a = (uintptr_t)p;
  int al = 256;
  while (al > 4 && a % al) al /= 2;
  return al;
}

// A product's descriptors and algorithm, made once per shape, strides, alignment and precision.
// convert: the inputs are rounded to bf16 copies first (when cuBLASLt offers no FAST_16BF
// algorithm for fp32 storage at this shape), then multiplied as bf16 with fp32 accumulation.
typedef struct {
  long long key[18];
  bool used, convert;
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulAlgo_t algo;
} gemm_plan;

#define PLAN_CACHE 512

static bool make_plan(gemm_plan *p, bool convert, const long long *k) {
  bool ta = k[0], tb = k[1];
  int m = (int)k[2], n = (int)k[3], kk = (int)k[4], lda = (int)k[5], ldb = (int)k[6], ldc = (int)k[7];
  int batch = (int)k[8];
  cublasComputeType_t ct = !cuda_g.bf16 ? CUBLAS_COMPUTE_32F : convert ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_16BF;
  cudaDataType_t ab = convert ? CUDA_R_16BF : CUDA_R_32F;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, ct, CUDA_R_32F));
  cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
  // converted inputs are packed: leading dimension = rows
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->la, ab, ta ? kk : m, ta ? m : kk, convert ? (ta ? kk : m) : lda));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lb, ab, tb ? n : kk, tb ? kk : n, convert ? (tb ? n : kk) : ldb));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc, CUDA_R_32F, m, n, ldc));
  if (batch > 1) {
    long long packed[2] = {(long long)m * kk, (long long)kk * n};
    long long st[3] = {convert ? packed[0] : k[9], convert ? packed[1] : k[10], k[11]};
    cublasLtMatrixLayout_t ls[3] = {p->la, p->lb, p->lc};
    for (int i = 0; i < 3; i++) {
      CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
      CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &st[i],
                                                    sizeof st[i]));
    }
  }
  cublasLtMatmulPreference_t pref;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &cuda_g.workspace_size, sizeof cuda_g.workspace_size));
  uint32_t al[3] = {convert ? 256u : (uint32_t)k[12], convert ? 256u : (uint32_t)k[13], (uint32_t)k[14]};
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], 4));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], 4));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], 4));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[2], 4));
  // no split-K reduced in place in the output (its order is not fixed): the same inputs give
  // the same bits, which the determinism test and bit-identical resumes rely on
  uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_MASK & ~(uint32_t)CUBLASLT_REDUCTION_SCHEME_INPLACE;
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes,
                                                    sizeof schemes));
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(cuda_g.lt, p->op, p->la, p->lb, p->lc, p->lc, pref, 1, &res,
                                                     &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || !found) {
    cublasLtMatrixLayoutDestroy(p->la), cublasLtMatrixLayoutDestroy(p->lb), cublasLtMatrixLayoutDestroy(p->lc);
    cublasLtMatmulDescDestroy(p->op);
    return false;
  }
  p->algo = res.algo;
  p->convert = convert;
  return true;
}

// out[rows, cols] (leading dimension ld, batch stride s) -> packed bf16 [batch][cols][rows]
__global__ static void to_bf16_kernel(__nv_bfloat16 *out, const float *in, int rows, int cols, int ld, long long s,
                                      int batch) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, per = (size_t)rows * cols;
  if (i >= per * batch) return;
  size_t b = i / per, j = i % per, c = j / rows, r = j % rows;
  out[i] = __float2bfloat16(in[b * s + c * ld + r]);
}

static const __nv_bfloat16 *to_bf16(void **buf, size_t *cap, const float *in, int rows, int cols, int ld, long long s,
                                    int batch) {
  size_t n = (size_t)rows * cols * batch;
  __nv_bfloat16 *o = (__nv_bfloat16 *)cuda_scratch(buf, cap, n * sizeof *o);
  to_bf16_kernel<<<ceil_div(n, 256), 256>>>(o, in, rows, cols, ld, s, batch);
  LAUNCH_CHECK();
  return o;
}

void cuda_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda, long long sA,
               const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch) {
  static gemm_plan cache[PLAN_CACHE];
  static void *abuf, *bbuf;
  static size_t acap, bcap;
  long long key[18] = {ta, tb, m, n, k, lda, ldb, ldc, batch, batch > 1 ? sA : 0, batch > 1 ? sB : 0,
                       batch > 1 ? sC : 0, alignment(A), alignment(B), alignment(C), beta != 0.0f, cuda_g.bf16, 1};
  unsigned long long h = 1469598103934665603ull;
  for (int i = 0; i < 18; i++) h = (h ^ (unsigned long long)key[i]) * 1099511628211ull;
  gemm_plan *p = &cache[h % PLAN_CACHE];
  if (!p->used || memcmp(p->key, key, sizeof key)) {
    if (p->used) {  // evict the entry this slot held
      cublasLtMatrixLayoutDestroy(p->la), cublasLtMatrixLayoutDestroy(p->lb), cublasLtMatrixLayoutDestroy(p->lc);
      cublasLtMatmulDescDestroy(p->op);
      p->used = false;
    }
    if (!make_plan(p, false, key)) {
      static bool said;
      if (!cuda_g.bf16 || !make_plan(p, true, key)) {
        fprintf(stderr, "igpt: cuBLASLt has no algorithm for a %dx%dx%d product (batch %d, %s); try --precision %s\n",
                m, n, k, batch, cuda_g.bf16 ? "bf16" : "fp32", cuda_g.bf16 ? "fp32" : "bf16");
        exit(1);
      }
      if (!said) fprintf(stderr, "igpt: cuBLASLt: no FAST_16BF algorithm on fp32 storage; bf16 copies of the inputs\n");
      said = true;
    }
    memcpy(p->key, key, sizeof key);
    p->used = true;
  }
  const void *a = A, *b = B;
  if (p->convert) {
    a = to_bf16(&abuf, &acap, A, ta ? k : m, ta ? m : k, lda, sA, batch);
    b = to_bf16(&bbuf, &bcap, B, tb ? n : k, tb ? k : n, ldb, sB, batch);
  }
  CUBLAS_CHECK(cublasLtMatmul(cuda_g.lt, p->op, &alpha, a, p->la, b, p->lb, &beta, C, p->lc, C, p->lc, &p->algo,
                              cuda_g.workspace, cuda_g.workspace_size, 0));
}

__global__ static void bias_add_kernel(float *out, const float *bias, size_t N, int OC) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < N * OC) out[i] += bias[i % OC];
}

// dbias[o] += sum_n dout[n,o]: one thread per output column, rows in order (deterministic)
__global__ static void bias_backward_kernel(float *dbias, const float *dout, int N, int OC) {
  int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= OC) return;
  float s = 0.0f;
  for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
  dbias[o] += s;
}

void cuda_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
  cuda_gemm(true, false, OC, N, C, 1.0f, w, C, 0, inp, C, 0, 0.0f, out, OC, 0, 1);
  if (bias) {
    bias_add_kernel<<<ceil_div((size_t)N * OC, 256), 256>>>(out, bias, N, OC);
    LAUNCH_CHECK();
  }
}

void cuda_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                          const float *w, int N, int C, int OC) {
  // dinp[N,C] += dout[N,OC] w[OC,C]  (column-major: dinp^T = w^T dout^T, w^T stored as [C,OC])
  if (dinp) cuda_gemm(false, false, C, N, OC, 1.0f, w, C, 0, dout, OC, 0, 1.0f, dinp, C, 0, 1);
  // dw[OC,C] += dout^T inp  (column-major: dw^T[C,OC] = inp^T[C,N] dout[N,OC])
  if (dw) cuda_gemm(false, true, C, OC, N, 1.0f, inp, C, 0, dout, OC, 0, 1.0f, dw, C, 0, 1);
  if (dbias) {
    bias_backward_kernel<<<ceil_div(OC, 128), 128>>>(dbias, dout, N, OC);
    LAUNCH_CHECK();
  }
}
