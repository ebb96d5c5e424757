// matmul: the linear layers y = x W^T + b through cuBLASLt, and cuda_gemm, the one product every
// CUDA op uses (attention's batched ones too). Storage is fp32 throughout (fp32 master weights,
// fp32 activations); bf16 precision asks cuBLASLt for CUBLAS_COMPUTE_32F_FAST_16BF, which rounds
// the inputs to bf16 for the tensor cores and accumulates in fp32, fp32 precision for
// CUBLAS_COMPUTE_32F (no TF32), which tracks the CPU reference. Algorithms are chosen once per
// shape, alignment and precision and cached (sampling calls the same few shapes thousands of
// times). Row-major y[N,OC] = x[N,C] W[OC,C]^T is column-major y^T = W x^T: op(A) = W^T.
#include "kernels/cuda/cuda.cuh"
#include <string.h>

static int alignment(const void *p) {
  uintptr_t a = (uintptr_t)p;
  int al = 256;
  while (al > 4 && a % al) al /= 2;
  return al;
}

typedef struct {
  int key[16];
  cublasLtMatmulAlgo_t algo;
  bool used;
} algo_entry;

#define ALGO_CACHE 256

void cuda_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda, long long sA,
               const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch) {
  static algo_entry cache[ALGO_CACHE];
  const cublasComputeType_t ct = cuda_g.bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
  int alA = alignment(A), alB = alignment(B), alC = alignment(C);
  int key[16] = {ta, tb, m, n, k, lda, ldb, ldc, batch, (int)(sA % 1000003), (int)(sB % 1000003),
                 (int)(sC % 1000003), alA * 1000 + alB, alC, beta != 0.0f, cuda_g.bf16};
  cublasLtMatmulDesc_t op;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, ct, CUDA_R_32F));
  cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
  cublasLtMatrixLayout_t la, lb, lc;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, ta ? k : m, ta ? m : k, lda));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, tb ? n : k, tb ? k : n, ldb));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, m, n, ldc));
  if (batch > 1) {
    cublasLtMatrixLayout_t ls[3] = {la, lb, lc};
    long long st[3] = {sA, sB, sC};
    for (int i = 0; i < 3; i++) {
      CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
      CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &st[i],
                                                    sizeof st[i]));
    }
  }
  unsigned h = 2166136261u;
  for (int i = 0; i < 16; i++) h = (h ^ (unsigned)key[i]) * 16777619u;
  algo_entry *e = &cache[h % ALGO_CACHE];
  if (!e->used || memcmp(e->key, key, sizeof key)) {
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &cuda_g.workspace_size, sizeof cuda_g.workspace_size));
    uint32_t a32[3] = {(uint32_t)alA, (uint32_t)alB, (uint32_t)alC};
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a32[0], 4));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a32[1], 4));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a32[2], 4));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a32[2], 4));
    // no split-K reduced in place in the output (its order is not fixed): the same inputs give
    // the same bits, which the determinism test and bit-identical resumes rely on
    uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_MASK & ~(uint32_t)CUBLASLT_REDUCTION_SCHEME_INPLACE;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes,
                                                      sizeof schemes));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(cuda_g.lt, op, la, lb, lc, lc, pref, 1, &res, &found));
    cublasLtMatmulPreferenceDestroy(pref);
    if (!found) {
      fprintf(stderr, "igpt: cuBLASLt has no algorithm for a %dx%dx%d product (batch %d, %s); try --precision %s\n",
              m, n, k, batch, cuda_g.bf16 ? "bf16" : "fp32", cuda_g.bf16 ? "fp32" : "bf16");
      exit(1);
    }
    memcpy(e->key, key, sizeof key);
    e->algo = res.algo;
    e->used = true;
  }
  CUBLAS_CHECK(cublasLtMatmul(cuda_g.lt, op, &alpha, A, la, B, lb, &beta, C, lc, C, lc, &e->algo,
                              cuda_g.workspace, cuda_g.workspace_size, 0));
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(op);
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
