// data_parallel: shards, the gradient average and the identity check; see data_parallel.h.
#include "engine/data_parallel.h"
#include "engine/comm.h"
#include "base/util.h"
#include <stdio.h>

int dp_shard_of(int batch, const char *flag, dp_shard *s) {
  if (comm_init()) return -1;
  s->rank = comm_rank();
  s->size = comm_size();
  if (batch % s->size)
    return igpt_err("%s %d is not divisible by the world size %d (%s ranks); every rank reads an "
                    "equal share of each global batch: choose a %s that is a multiple of %d or "
                    "another number of ranks", flag, batch, s->size, comm_launcher(), flag, s->size);
  s->rows = batch / s->size;
  s->first = s->rank * s->rows;
  return 0;
}

// The gradients are where the model's backend keeps them: host memory averages through MPI in
// place; a GPU's through NCCL on the device (started at the first step, its id shared over MPI)
// in a build with NCCL, else through a host copy and MPI.
int dp_average_grads(model *m) {
  if (comm_size() == 1) return 0;
  if (m->be->host_memory) return comm_allreduce_avg(m->bgrads, m->n_params);
  if (!comm_nccl_ready() && comm_nccl_version() && comm_nccl_init(NULL) < 0) return -1;
  if (comm_nccl_ready()) return comm_allreduce_avg_device(m->bgrads, m->n_params, NULL);
  model_pull_grads(m);
  if (comm_allreduce_avg(m->grads, m->n_params) < 0) return -1;
  m->be->upload(m->bgrads, m->grads, m->n_params * sizeof(float));
  return 0;
}

int dp_average(double *v, int n) { return comm_size() == 1 ? 0 : comm_allreduce_avg_f64(v, (size_t)n); }

int dp_check_identical(const model *m, const train_state *st, int64_t step) {
  if (comm_size() == 1) return 0;
  char what[64];
  snprintf(what, sizeof what, "the weights after step %lld", (long long)step);
  if (comm_check_same(m->params, m->n_params * sizeof(float), what)) return -1;
  snprintf(what, sizeof what, "Adam's moments after step %lld", (long long)step);
  if (comm_check_same(st->m, st->n * sizeof(float), what) || comm_check_same(st->v, st->n * sizeof(float), what))
    return -1;
  return 0;
}
