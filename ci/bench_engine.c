// bench_engine: times the engine on one backend for ci/bench-features.sh, ci/bench-sample.sh and
// ci/gpu-check.sh, printing one JSON line of medians after warm-up:
//   step      one training step (forward, backward, clipping, AdamW) of batch B at T = n_ctx
//   features  every layer's pooled features of batch B (one forward, no head, no gradients)
//   sample    KV-cached sampling of T positions for B sequences (sample_tokens, temperature 1)
//   gemm      y = x W^T of N x N x N (N = D) through the backend's matmul: the products' ceiling
// usage: bench_engine MODE DEVICE PRECISION L D H T B V REPEATS
// Models have the official layout and weights of the init's scale (speed does not depend on them).
#include "engine/device.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/sample.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *t, int n) {
  qsort(t, n, sizeof *t, cmp);
  return t[n / 2];
}

int main(int argc, char **argv) {
  if (argc != 11) {
    fprintf(stderr, "usage: bench_engine step|features|sample|gemm DEVICE PRECISION L D H T B V REPEATS\n");
    return 2;
  }
  const char *mode = argv[1];
  if (device_select(argv[2], argv[3])) igpt_die("%s", igpt_errmsg());
  const backend *be = device_current();
  model_config c;
  model_config_default(&c);
  c.n_layer = atoi(argv[4]), c.n_embd = atoi(argv[5]), c.n_head = atoi(argv[6]), c.n_ctx = atoi(argv[7]);
  int B = atoi(argv[8]), T = c.n_ctx, reps = atoi(argv[10]);
  c.n_vocab = atoi(argv[9]);
  if (reps < 1) reps = 1;
  double *t = xmalloc((size_t)reps * sizeof *t), extra = 0;

  if (!strcmp(mode, "gemm")) {
    size_t N = (size_t)c.n_embd;
    float *x = be->alloc(N * N * 4), *w = be->alloc(N * N * 4), *y = be->alloc(N * N * 4);
    if (!x || !w || !y) igpt_die("bench_engine: no memory for a %zu^3 product on %s", N, be->detail);
    be->zero(x, N * N * 4), be->zero(w, N * N * 4);
    for (int s = -2; s < reps; s++) {
      float probe;
      double t0 = now_seconds();
      be->matmul_forward(y, x, w, NULL, (int)N, (int)N, (int)N);
      be->download(&probe, y, sizeof probe);  // waits for the product
      if (s >= 0) t[s] = now_seconds() - t0;
    }
    double sec = median(t, reps);
    printf("{\"mode\":\"gemm\",\"device\":\"%s\",\"n\":%zu,\"ms\":%.3f,\"tflops\":%.1f}\n", be->detail, N, sec * 1e3,
           2.0 * N * N * N / sec / 1e12);
    return 0;
  }

  model *m = model_new(&c);
  if (!m) igpt_die("%s", igpt_errmsg());
  // weights of the init's scale from a hash of the index (model_init's normal draws take a minute
  // at the L shape, single-threaded; the speed does not depend on the values), gains 1
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < m->n_params; i++) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
    m->params[i] = 0.02f * ((float)(z >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
  }
  model_param_id gains[] = {P_LN1_G, P_LN2_G, P_LNF_G};
  for (int g = 0; g < 3; g++)
    for (size_t i = 0; i < m->info[gains[g]].numel; i++) m->param[gains[g]][i] = 1.0f;
  uint16_t *tok = xmalloc((size_t)B * T * 2);
  for (size_t i = 0; i < (size_t)B * T; i++) tok[i] = (uint16_t)((i * 2654435761u) % (unsigned)c.n_vocab);
  float *hm = NULL, *hv = NULL;
  optim o = {0};
  if (!strcmp(mode, "step")) {
    hm = xcalloc(m->n_params, 4), hv = xcalloc(m->n_params, 4);
    if (optim_attach(&o, m, hm, hv)) igpt_die("%s", igpt_errmsg());
  }
  adamw_opts ao = adamw_defaults();
  if (!strcmp(mode, "sample")) {  // one long timed run after a short one of the same batch
    sample_opts so = {.temperature = 1.0, .seed = 1, .use_cache = true};
    if (sample_tokens(m, tok, B, 4, 0, &so, NULL, NULL)) igpt_die("%s", igpt_errmsg());
    double t0 = now_seconds();
    if (sample_tokens(m, tok, B, T, 0, &so, NULL, NULL)) igpt_die("%s", igpt_errmsg());
    t[0] = now_seconds() - t0;
    reps = 1;
  }
  for (int s = -2; s < reps && strcmp(mode, "sample"); s++) {  // 2 warm-ups: allocation, algorithms
    double t0 = now_seconds();
    if (!strcmp(mode, "step")) {
      model_zero_grad(m);
      model_batch mb = {.tokens = tok, .B = B, .T = T, .grad = true, .head = true};
      if (model_forward(m, &mb) || model_backward(m)) igpt_die("%s", igpt_errmsg());
      optim_clip(&o, 1.0);  // reads the norm back: the step's gradients are complete
      optim_step(&o, s + 3, 1e-4, 0.0, &ao);
      extra = m->loss;
    } else if (!strcmp(mode, "features")) {
      model_batch mb = {.tokens = tok, .B = B, .T = T};
      if (model_forward(m, &mb)) igpt_die("%s", igpt_errmsg());
      extra = model_features(m)[0];  // the download waits for the pass
    } else {
      igpt_die("bench_engine: unknown mode %s", mode);
    }
    if (s >= 0) t[s] = now_seconds() - t0;
  }
  if (!strcmp(mode, "step")) {  // the last AdamW launch is asynchronous: wait for it once
    float probe;
    be->download(&probe, m->bparams, sizeof probe);
  }
  double sec = median(t, reps);
  if (!strcmp(mode, "step"))
    printf("{\"mode\":\"step\",\"device\":\"%s\",\"ms\":%.2f,\"tokens_per_s\":%.0f,\"loss\":%.5f}\n", be->detail,
           sec * 1e3, (double)B * T / sec, extra);
  else if (!strcmp(mode, "features"))
    printf("{\"mode\":\"features\",\"device\":\"%s\",\"ms\":%.2f,\"images_per_s\":%.1f}\n", be->detail, sec * 1e3,
           B / sec);
  else
    printf("{\"mode\":\"sample\",\"device\":\"%s\",\"seconds\":%.3f,\"tokens\":%lld,\"tokens_per_s\":%.0f}\n",
           be->detail, sec, (long long)B * T, (double)B * T / sec);
  optim_release(&o);
  free(hm), free(hv), free(tok), free(t);
  model_free(m);
  return 0;
}
