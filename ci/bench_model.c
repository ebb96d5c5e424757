// bench_model: times the model's forward + backward (no optimizer) for ci/bench-model.sh.
// usage: bench_model L D H T B V STEPS  -> prints {"fwd_ms":..,"fwdbwd_ms":..} (medians)
#include "engine/model.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: bench_model L D H T B V STEPS\n");
    return 2;
  }
  model_config c;
  model_config_default(&c);
  c.n_layer = atoi(argv[1]), c.n_embd = atoi(argv[2]), c.n_head = atoi(argv[3]), c.n_ctx = atoi(argv[4]);
  int B = atoi(argv[5]), T = c.n_ctx, steps = atoi(argv[7]);
  c.n_vocab = atoi(argv[6]);
  model *m = model_new(&c);
  if (!m) igpt_die("%s", igpt_errmsg());
  model_init(m, 1);
  for (size_t i = 0; i < m->info[P_WTET].numel; i++) m->param[P_WTET][i] = 0.01f * (float)(i % 7);
  uint16_t *tok = xmalloc((size_t)B * T * 2);
  for (int i = 0; i < B * T; i++) tok[i] = (uint16_t)((i * 2654435761u) % (unsigned)c.n_vocab);
  model_batch b = {.tokens = tok, .B = B, .T = T, .grad = true, .head = true};
  double *tf = xmalloc(steps * sizeof *tf), *tb = xmalloc(steps * sizeof *tb);
  for (int s = -2; s < steps; s++) {  // two warm-up steps allocate and fault pages in
    double t0 = now_seconds();
    if (model_forward(m, &b)) igpt_die("%s", igpt_errmsg());
    double t1 = now_seconds();
    model_zero_grad(m);
    model_backward(m);
    double t2 = now_seconds();
    if (s >= 0) tf[s] = (t1 - t0) * 1e3, tb[s] = (t2 - t0) * 1e3;
  }
  qsort(tf, steps, sizeof *tf, cmp);
  qsort(tb, steps, sizeof *tb, cmp);
  printf("{\"fwd_ms\": %.2f, \"fwdbwd_ms\": %.2f, \"loss\": %.5f}\n", tf[steps / 2], tb[steps / 2], m->loss);
  model_free(m);
  free(tok), free(tf), free(tb);
  return 0;
}
