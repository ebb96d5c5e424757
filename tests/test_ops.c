// CPU ops at sizes that take their multi-threaded, multi-block paths (attention over several
// 64-row blocks with a partial last one, matmul rows and weight rows split across threads, the
// norm's per-thread gain sums), against plain double-precision loops written here.
// Tolerances: float32 results against float64 references of sums over at most a few hundred
// terms: 1e-5 relative (float32 rounding is 6e-8 a step; the bound leaves a wide margin while
// an indexing error gives O(1)).
#include "testutil.h"
#include "kernels/ops.h"
#include "base/rng.h"

static float *randn(size_t n, uint64_t seed, float std) {
  rng_t r;
  rng_seed(&r, seed);
  float *x = xmalloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = std * rng_normal(&r);
  return x;
}

static void close_to(const char *what, const float *a, const double *ref, size_t n, double tol) {
  double e = rel_err_f32_f64(a, ref, n);
  cr_expect(e < tol, "%s: relative error %.3g exceeds %g", what, e, tol);
}

// Naive attention in double: out [B,T,C] from qkv [B,T,3C] (float or double input).
static void attention_ref(double *out, const double *qkv, int B, int T, int C, int NH, int causal) {
  int hd = C / NH;
  double *s = xmalloc((size_t)T * sizeof *s);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++)
      for (int i = 0; i < T; i++) {
        const double *q = qkv + ((size_t)b * T + i) * 3 * C + h * hd;
        int n = causal ? i + 1 : T;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < n; j++) {
          const double *k = qkv + ((size_t)b * T + j) * 3 * C + C + h * hd;
          double d = 0;
          for (int e = 0; e < hd; e++) d += q[e] * k[e];
          s[j] = d / sqrt((double)hd);
          mx = s[j] > mx ? s[j] : mx;
        }
        for (int j = 0; j < n; j++) sum += s[j] = exp(s[j] - mx);
        double *o = out + ((size_t)b * T + i) * C + h * hd;
        for (int e = 0; e < hd; e++) o[e] = 0;
        for (int j = 0; j < n; j++) {
          const double *v = qkv + ((size_t)b * T + j) * 3 * C + 2 * C + h * hd;
          for (int e = 0; e < hd; e++) o[e] += s[j] / sum * v[e];
        }
      }
  free(s);
}

Test(ops, attention_forward_and_backward_multiblock) {
  enum { B = 2, T = 150, C = 32, NH = 2 };
  size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C;
  float *qkv = randn(nq, 1, 1.0f), *dout = randn(no, 2, 1.0f), *d = randn(nq, 3, 1.0f);
  float *out = xmalloc(no * 4), *att = xmalloc((size_t)B * NH * T * T * 4), *datt = xmalloc((size_t)B * NH * T * T * 4);
  double *q64 = xmalloc(nq * 8), *o64 = xmalloc(no * 8);
  for (int causal = 0; causal < 2; causal++) {
    attention_forward(out, att, qkv, B, T, C, NH, causal);
    for (size_t i = 0; i < nq; i++) q64[i] = qkv[i];
    attention_ref(o64, q64, B, T, C, NH, causal);
    close_to(causal ? "causal attention" : "bidirectional attention", out, o64, no, 1e-5);
    // backward: the directional derivative of L = sum(out * dout) along d, analytic vs a
    // central difference of the double reference (h = 1e-3: truncation ~1e-7 relative)
    float *dqkv = xcalloc(nq, 4);
    attention_backward(dqkv, datt, dout, NULL, qkv, att, B, T, C, NH, causal);
    double ana = 0, f[2];
    for (size_t i = 0; i < nq; i++) ana += (double)dqkv[i] * d[i];
    for (int s = 0; s < 2; s++) {
      for (size_t i = 0; i < nq; i++) q64[i] = qkv[i] + (s ? -1e-3 : 1e-3) * d[i];
      attention_ref(o64, q64, B, T, C, NH, causal);
      f[s] = 0;
      for (size_t i = 0; i < no; i++) f[s] += o64[i] * dout[i];
    }
    double num = (f[0] - f[1]) / 2e-3;
    cr_expect(fabs(ana - num) < 1e-4 * fabs(num), "attention backward (causal %d): %.8g vs %.8g", causal, ana, num);
    free(dqkv);
  }
  free(qkv), free(dout), free(d), free(out), free(att), free(datt), free(q64), free(o64);
}

// The GPU's flash backward (kernels/cuda/attention.cu) in plain loops with its thread mapping
// written out: each row's log-sum-exp from the forward's online_softmax_step, D = dout . out, dq
// a query row at a time, dk and dv a key row at a time, every probability recomputed with
// attn_prob and every score gradient from attn_dscore (kernels/math.h, the functions the kernels
// call). It must give the materialising backward's dqkv: both are float32 sums of at most 150
// terms in other orders, so 1e-5 relative as above.
Test(ops, flash_backward_recurrence_matches_the_materialising_backward) {
  enum { B = 2, T = 150, C = 32, NH = 2, HD = C / NH };
  const size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, C3 = 3 * C;
  const float scale = 1.0f / sqrtf((float)HD);
  float *qkv = randn(nq, 21, 1.0f), *dout = randn(no, 22, 1.0f), *out = xmalloc(no * 4);
  float *att = xmalloc((size_t)B * NH * T * T * 4), *datt = xmalloc((size_t)B * NH * T * T * 4);
  float *lse = xmalloc((size_t)B * NH * T * 4), *D = xmalloc((size_t)B * NH * T * 4);
  float *ref = xmalloc(nq * 4), *fl = xmalloc(nq * 4);
  double *ref64 = xmalloc(nq * 8);
  for (int causal = 0; causal < 2; causal++) {
    attention_forward(out, att, qkv, B, T, C, NH, causal);
    memset(ref, 0, nq * 4), memset(fl, 0, nq * 4);
    attention_backward(ref, datt, dout, out, qkv, att, B, T, C, NH, causal);
    for (int b = 0; b < B; b++)
      for (int h = 0; h < NH; h++) {
        const float *base = qkv + (size_t)b * T * C3 + h * HD, *dy = dout + (size_t)b * T * C + h * HD;
        float *g = fl + (size_t)b * T * C3 + h * HD;
        const size_t rows = ((size_t)b * NH + h) * T;
        for (int i = 0; i < T; i++) {  // the forward's saved row statistics, and D
          float mx = -INFINITY, sum = 0.0f, p, d = 0.0f;
          for (int j = 0; j < (causal ? i + 1 : T); j++) {
            float s = 0.0f;
            for (int e = 0; e < HD; e++) s += base[(size_t)i * C3 + e] * scale * base[(size_t)j * C3 + C + e];
            online_softmax_step(&mx, &sum, s, &p);
          }
          lse[rows + i] = softmax_lse(mx, sum);
          for (int e = 0; e < HD; e++) d += dy[(size_t)i * C + e] * out[((size_t)b * T + i) * C + h * HD + e];
          D[rows + i] = d;
        }
        for (int i = 0; i < T; i++) {  // flash_backward_dq_kernel: a thread per query row
          float dq[HD] = {0};
          for (int j = 0; j < (causal ? i + 1 : T); j++) {
            float s = 0.0f, dp = 0.0f;
            for (int e = 0; e < HD; e++)
              s += base[(size_t)i * C3 + e] * scale * base[(size_t)j * C3 + C + e],
              dp += dy[(size_t)i * C + e] * base[(size_t)j * C3 + 2 * C + e];
            float ds = attn_dscore(attn_prob(s, lse[rows + i]), dp, D[rows + i]);
            for (int e = 0; e < HD; e++) dq[e] += ds * base[(size_t)j * C3 + C + e];
          }
          for (int e = 0; e < HD; e++) g[(size_t)i * C3 + e] += dq[e] * scale;
        }
        for (int j = 0; j < T; j++) {  // flash_backward_dkdv_kernel: a thread per key row
          float dk[HD] = {0}, dv[HD] = {0};
          for (int i = causal ? j : 0; i < T; i++) {
            float s = 0.0f, dp = 0.0f;
            for (int e = 0; e < HD; e++)
              s += base[(size_t)i * C3 + e] * scale * base[(size_t)j * C3 + C + e],
              dp += dy[(size_t)i * C + e] * base[(size_t)j * C3 + 2 * C + e];
            float p = attn_prob(s, lse[rows + i]), ds = attn_dscore(p, dp, D[rows + i]);
            for (int e = 0; e < HD; e++)
              dv[e] += p * dy[(size_t)i * C + e], dk[e] += ds * base[(size_t)i * C3 + e] * scale;
          }
          for (int e = 0; e < HD; e++) g[(size_t)j * C3 + C + e] += dk[e], g[(size_t)j * C3 + 2 * C + e] += dv[e];
        }
      }
    for (size_t i = 0; i < nq; i++) ref64[i] = ref[i];
    close_to(causal ? "flash backward (causal)" : "flash backward (bidirectional)", fl, ref64, nq, 1e-5);
  }
  free(qkv), free(dout), free(out), free(att), free(datt), free(lse), free(D), free(ref), free(fl), free(ref64);
}

Test(ops, matmul_split_across_threads) {
  enum { N = 300, C = 64, OC = 100 };
  float *x = randn((size_t)N * C, 4, 1), *w = randn((size_t)OC * C, 5, 1), *b = randn(OC, 6, 1);
  float *dy = randn((size_t)N * OC, 7, 1), *y = xmalloc((size_t)N * OC * 4);
  float *dx = xcalloc((size_t)N * C, 4), *dw = xcalloc((size_t)OC * C, 4), *db = xcalloc(OC, 4);
  matmul_forward(y, x, w, b, N, C, OC);
  matmul_backward(dx, dw, db, dy, x, w, N, C, OC);
  double *ry = xcalloc((size_t)N * OC, 8), *rdx = xcalloc((size_t)N * C, 8), *rdw = xcalloc((size_t)OC * C, 8),
         *rdb = xcalloc(OC, 8);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) {
      double s = b[o], g = dy[(size_t)n * OC + o];
      for (int c = 0; c < C; c++) {
        s += (double)x[(size_t)n * C + c] * w[(size_t)o * C + c];
        rdx[(size_t)n * C + c] += g * w[(size_t)o * C + c];
        rdw[(size_t)o * C + c] += g * x[(size_t)n * C + c];
      }
      ry[(size_t)n * OC + o] = s;
      rdb[o] += g;
    }
  close_to("matmul y", y, ry, (size_t)N * OC, 1e-5);
  close_to("matmul dx", dx, rdx, (size_t)N * C, 1e-5);
  close_to("matmul dw", dw, rdw, (size_t)OC * C, 1e-5);
  close_to("matmul db", db, rdb, OC, 1e-5);
  free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(ry), free(rdx), free(rdw), free(rdb);
}

Test(ops, rmsnorm_gelu_crossentropy_large) {
  enum { N = 700, C = 64, V = 100 };
  float *x = randn((size_t)N * C, 8, 2), *g = randn(C, 9, 1), *dy = randn((size_t)N * C, 10, 1);
  float *y = xmalloc((size_t)N * C * 4), *rstd = xmalloc(N * 4), *dx = xcalloc((size_t)N * C, 4), *dg = xcalloc(C, 4);
  rmsnorm_forward(y, rstd, x, g, N, C);
  rmsnorm_backward(dx, dg, dy, x, g, rstd, N, C);
  double *ry = xmalloc((size_t)N * C * 8), *rdx = xmalloc((size_t)N * C * 8), *rdg = xcalloc(C, 8);
  for (int n = 0; n < N; n++) {
    const float *xn = x + (size_t)n * C, *dn = dy + (size_t)n * C;
    double ss = 0, dot = 0;
    for (int c = 0; c < C; c++) ss += (double)xn[c] * xn[c];
    double r = 1 / sqrt(ss / C + 1e-5);
    for (int c = 0; c < C; c++) dot += (double)dn[c] * g[c] * xn[c];
    for (int c = 0; c < C; c++) {
      ry[(size_t)n * C + c] = xn[c] * r * g[c];
      rdx[(size_t)n * C + c] = r * g[c] * dn[c] - xn[c] * r * r * r * dot / C;
      rdg[c] += (double)dn[c] * xn[c] * r;
    }
  }
  close_to("rmsnorm y", y, ry, (size_t)N * C, 1e-5);
  close_to("rmsnorm dx", dx, rdx, (size_t)N * C, 1e-5);
  close_to("rmsnorm dg", dg, rdg, C, 1e-5);

  size_t M = (size_t)N * C;
  float *gy = xmalloc(M * 4), *gdx = xcalloc(M, 4);
  gelu2_forward(gy, x, M);
  gelu2_backward(gdx, x, dy, M);
  for (size_t i = 0; i < M; i++) {
    double s = 1 / (1 + exp(-1.702 * x[i]));
    ry[i] = x[i] * s;
    rdx[i] = dy[i] * (s + 1.702 * x[i] * s * (1 - s));
  }
  close_to("gelu2 y", gy, ry, M, 1e-5);
  close_to("gelu2 dx", gdx, rdx, M, 1e-5);

  float *z = randn((size_t)N * V, 11, 3), *p = xmalloc((size_t)N * V * 4), *l = xmalloc(N * 4), *w = xmalloc(N * 4);
  uint16_t *tg = xmalloc(N * 2);
  for (int n = 0; n < N; n++) tg[n] = (uint16_t)((n * 37) % V), w[n] = n % 3 ? 1.0f / N : 0.0f;
  double tot = crossentropy_forward(l, p, z, tg, w, N, V), rtot = 0;
  double *rl = xmalloc(N * 8);
  for (int n = 0; n < N; n++) {
    double mx = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) mx = fmax(mx, z[(size_t)n * V + v]);
    for (int v = 0; v < V; v++) s += exp(z[(size_t)n * V + v] - mx);
    rl[n] = w[n] ? log(s) + mx - z[(size_t)n * V + tg[n]] : 0;
    rtot += w[n] * rl[n];
  }
  close_to("cross-entropy losses", l, rl, N, 1e-5);
  cr_expect(fabs(tot - rtot) < 1e-5 * rtot, "cross-entropy total %.8g vs %.8g", tot, rtot);
  free(x), free(g), free(dy), free(y), free(rstd), free(dx), free(dg), free(ry), free(rdx), free(rdg);
  free(gy), free(gdx), free(z), free(p), free(l), free(w), free(tg), free(rl);
}

// The online-softmax recurrence of kernels/math.h (the CUDA flash kernel's arithmetic), run here
// on the CPU: folding scores one at a time, with the running output rescaled, gives the two-pass
// softmax-weighted sum. Tolerance 1e-5 relative: float32 over 300 terms, against float64.
Test(ops, online_softmax_step_equals_two_pass_softmax) {
  enum { N = 300, E = 4 };
  float *s = randn(N, 21, 4.0f), *v = randn((size_t)N * E, 22, 1.0f);
  float mx = -INFINITY, sum = 0.0f, acc[E] = {0};
  for (int j = 0; j < N; j++) {
    float p, r = online_softmax_step(&mx, &sum, s[j], &p);
    for (int e = 0; e < E; e++) acc[e] = acc[e] * r + p * v[j * E + e];
  }
  double m = -INFINITY, z = 0, ref[E] = {0};
  for (int j = 0; j < N; j++) m = fmax(m, s[j]);
  for (int j = 0; j < N; j++) z += exp(s[j] - m);
  for (int j = 0; j < N; j++)
    for (int e = 0; e < E; e++) ref[e] += exp(s[j] - m) / z * v[j * E + e];
  float out[E];
  for (int e = 0; e < E; e++) out[e] = acc[e] / sum;
  close_to("online softmax", out, ref, E, 1e-5);
  cr_expect_eq(mx, (float)m, "running max %g, max %g", mx, m);
  free(s), free(v);
}
