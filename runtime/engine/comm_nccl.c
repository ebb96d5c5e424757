// comm_nccl: the NCCL half of the communicator (comm.h), built when nccl.h is found in
// /usr/local/cuda (the Makefile defines IGPT_HAVE_NCCL); GPU buffers, one rank per GPU. Without
// NCCL the functions say so. The unique id goes from rank 0 to the others by MPI broadcast, or,
// without MPI, through a file rank 0 writes atomically into the job directory.
#include "engine/comm.h"
#include "base/util.h"
#ifdef IGPT_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ncclComm_t nccl;
static bool ready;

static int nccl_ok(ncclResult_t r, const char *what) {
  if (r == ncclSuccess) return 0;
  return igpt_err("%s on rank %d of %d: %s (NCCL_DEBUG=INFO says more)", what, comm_rank(), comm_size(),
                  ncclGetErrorString(r));
}

// Rank 0's id into the others' through dir/nccl.id (rank 0 writes it atomically; the others wait
// for it, at most IGPT_NCCL_ID_WAIT seconds, default 120).
static int share_id_by_file(ncclUniqueId *id, const char *dir) {
  char *path = xasprintf("%s/nccl.id", dir);
  int rc = 0;
  if (comm_rank() == 0) {
    rc = file_write_atomic(path, id, sizeof *id);
  } else {
    const char *w = getenv("IGPT_NCCL_ID_WAIT");
    double limit = w ? atof(w) : 120, t0 = now_seconds();
    uint8_t *data = NULL;
    size_t len = 0;
    while (!(path_exists(path) && file_read_all(path, &data, &len) == 0 && len == sizeof *id)) {
      free(data);
      data = NULL;
      if (now_seconds() - t0 > limit) {
        rc = igpt_err("%s: rank 0's NCCL id did not appear within %.0f s; is rank 0 running in the "
                      "same job directory?", path, limit);
        break;
      }
      usleep(100000);
    }
    if (!rc) memcpy(id, data, sizeof *id);
    free(data);
  }
  free(path);
  return rc;
}

int comm_nccl_init(const char *id_dir) {
  if (ready) return 0;
  if (comm_init()) return -1;
  ncclUniqueId id;
  if (comm_rank() == 0 && nccl_ok(ncclGetUniqueId(&id), "ncclGetUniqueId")) return -1;
  if (comm_size() > 1) {
    // MPI present: broadcast; else the file (comm_broadcast fails without MPI, so try it only then)
    if (id_dir && !comm_mpi_active()) {
      if (share_id_by_file(&id, id_dir)) return -1;
    } else if (comm_broadcast(&id, sizeof id, 0)) {
      return -1;
    }
  }
  if (nccl_ok(ncclCommInitRank(&nccl, comm_size(), id, comm_rank()), "ncclCommInitRank")) return -1;
  ready = true;
  return 0;
}

bool comm_nccl_ready(void) { return ready; }

int comm_allreduce_avg_device(float *dbuf, size_t n, void *stream) {
  if (!ready) return igpt_err("comm_allreduce_avg_device: comm_nccl_init has not run");
  cudaStream_t s = (cudaStream_t)stream;
  if (nccl_ok(ncclAllReduce(dbuf, dbuf, n, ncclFloat, ncclAvg, nccl, s), "ncclAllReduce")) return -1;
  cudaError_t e = cudaStreamSynchronize(s);
  if (e != cudaSuccess)
    return igpt_err("all-reduce on rank %d: cudaStreamSynchronize: %s", comm_rank(), cudaGetErrorString(e));
  return 0;
}

void comm_nccl_finalize(void) {
  if (!ready) return;
  ncclCommDestroy(nccl);
  ready = false;
}

const char *comm_nccl_version(void) {
  static char buf[32];
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "nccl";
  snprintf(buf, sizeof buf, "nccl %d.%d.%d", v / 10000, v / 100 % 100, v % 100);
  return buf;
}
#else
int comm_nccl_init(const char *id_dir) {
  (void)id_dir;
  return igpt_err("this igpt was built without NCCL (nccl.h not found in /usr/local/cuda/include); "
                  "GPU buffers cannot be all-reduced");
}
bool comm_nccl_ready(void) { return false; }
int comm_allreduce_avg_device(float *dbuf, size_t n, void *stream) {
  (void)dbuf, (void)n, (void)stream;
  return comm_nccl_init(NULL);
}
void comm_nccl_finalize(void) {}
const char *comm_nccl_version(void) { return NULL; }
#endif
