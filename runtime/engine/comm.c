// comm: ranks from the launcher's environment, MPI collectives on CPU buffers; see comm.h.
#include "engine/comm.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef IGPT_HAVE_MPI
#include <mpi.h>
#endif

static struct {
  bool init, mpi;  // comm_init ran; MPI_Init ran (a world of more than one)
  int rank, size, local_rank;
  const char *launcher;
} world = {.size = 1, .launcher = "single"};

// A non-negative integer environment variable, or -1.
static int env_int(const char *name) {
  const char *s = getenv(name);
  if (!s || !*s) return -1;
  char *end;
  long v = strtol(s, &end, 10);
  return *end || v < 0 || v > 1 << 24 ? -1 : (int)v;
}

#if defined IGPT_HAVE_MPI || defined IGPT_HAVE_NCCL
// A world of `size` ranks, this one `rank`, as its launcher told it.
static void world_set(int rank, int size, int local, const char *launcher) {
  world.rank = rank;
  world.size = size;
  world.local_rank = local < 0 ? 0 : local;
  world.launcher = launcher;
  world.init = true;
}
#endif

int comm_init(void) {
  if (world.init) return 0;
  // mpirun first: under a Slurm allocation mpirun's ranks also see SLURM_*. srun's ranks are
  // told by SLURM_STEP_NUM_TASKS, which the batch script itself (one process) does not have.
  int size = env_int("OMPI_COMM_WORLD_SIZE"), rank = env_int("OMPI_COMM_WORLD_RANK");
  int local = env_int("OMPI_COMM_WORLD_LOCAL_RANK");
  const char *launcher = "mpirun";
  if (size < 1) {
    size = env_int("SLURM_STEP_NUM_TASKS"), rank = env_int("SLURM_PROCID");
    local = env_int("SLURM_LOCALID");
    launcher = "srun";
  }
  if (size <= 1 || rank < 0 || rank >= size) {
    world.init = true;  // a world of one
    return 0;
  }
#ifdef IGPT_HAVE_MPI
  int provided = 0;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    return igpt_err("MPI_Init failed for rank %d of %d (launched by %s)", rank, size, launcher);
  int r, s;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  if (r != rank || s != size) {
    MPI_Abort(MPI_COMM_WORLD, 1);
    return igpt_err("MPI says rank %d of %d, the %s environment rank %d of %d", r, s, launcher, rank, size);
  }
  world.mpi = true;
  world_set(rank, size, local, launcher);
  return 0;
#elif defined IGPT_HAVE_NCCL
  // NCCL alone: GPU buffers only, the unique id through a file (comm_nccl_init)
  world_set(rank, size, local, launcher);
  return 0;
#else
  (void)local;
  return igpt_err("%s started %d ranks, but this igpt was built without MPI (it runs one process); "
                  "install libopenmpi-dev and rebuild (`make`), or run a single process", launcher, size);
#endif
}

// CPU collectives: nothing to do in a world of one; MPI otherwise.
static int need_mpi(const char *what) {
  if (world.mpi) return 1;
  if (world.size == 1) return 0;
  return igpt_err("%s of CPU buffers across %d ranks needs MPI, and this igpt was built without it "
                  "(install libopenmpi-dev and rebuild)", what, world.size);
}

int comm_rank(void) { return world.rank; }
int comm_size(void) { return world.size; }
int comm_local_rank(void) { return world.local_rank; }
const char *comm_launcher(void) { return world.launcher; }
bool comm_mpi_active(void) { return world.mpi; }

#ifdef IGPT_HAVE_MPI
// MPI errors are fatal by default (MPI_ERRORS_ARE_FATAL): a failing collective ends the world
// with MPI's own message, so the checks below only catch what a changed handler would return.
static int mpi_ok(int rc, const char *what) {
  if (rc == MPI_SUCCESS) return 0;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return igpt_err("%s on rank %d of %d: %s", what, world.rank, world.size, msg);
}

// MPI counts are ints: long buffers go in slices.
#define SLICE ((size_t)1 << 30)
#endif

int comm_allreduce_avg(float *buf, size_t n) {
  int need = need_mpi("all-reduce");
  if (need <= 0) return need;
  (void)buf, (void)n;  // without MPI need is never 1
#ifdef IGPT_HAVE_MPI
  for (size_t i = 0; i < n; i += SLICE) {
    int k = (int)(n - i < SLICE ? n - i : SLICE);
    if (mpi_ok(MPI_Allreduce(MPI_IN_PLACE, buf + i, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "all-reduce"))
      return -1;
  }
  const float inv = 1.0f / (float)world.size;
  for (size_t i = 0; i < n; i++) buf[i] *= inv;
#endif
  return 0;
}

int comm_allreduce_sum_f64(double *buf, size_t n) {
  int need = need_mpi("all-reduce");
  if (need <= 0) return need;
  (void)buf, (void)n;
#ifdef IGPT_HAVE_MPI
  if (n > SLICE) return igpt_err("comm_allreduce_sum_f64: %zu values, more than one slice", n);
  if (mpi_ok(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "all-reduce"))
    return -1;
#endif
  return 0;
}

int comm_allreduce_avg_f64(double *buf, size_t n) {
  if (comm_allreduce_sum_f64(buf, n)) return -1;
  for (size_t i = 0; i < n && world.size > 1; i++) buf[i] /= world.size;
  return 0;
}

int comm_broadcast(void *buf, size_t bytes, int root) {
  int need = need_mpi("broadcast");
  if (need <= 0) return need;
  (void)buf, (void)bytes, (void)root;
#ifdef IGPT_HAVE_MPI
  for (size_t i = 0; i < bytes; i += SLICE) {
    int k = (int)(bytes - i < SLICE ? bytes - i : SLICE);
    if (mpi_ok(MPI_Bcast((char *)buf + i, k, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast")) return -1;
  }
#endif
  return 0;
}

int comm_barrier(void) {
  int need = need_mpi("barrier");
  if (need <= 0) return need;
#ifdef IGPT_HAVE_MPI
  return mpi_ok(MPI_Barrier(MPI_COMM_WORLD), "barrier");
#else
  return 0;
#endif
}

// splitmix64's finaliser: a bijection, so a changed word always changes its term of the sum.
static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t comm_checksum(const void *buf, size_t bytes) {
  const uint8_t *p = buf;
  size_t words = bytes / 8;
  uint64_t s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (size_t i = 0; i < words; i++) {
    uint64_t w;
    memcpy(&w, p + 8 * i, 8);
    s += mix64(w ^ (i * 0x9e3779b97f4a7c15ULL));  // position-dependent: a swap is seen too
  }
  uint64_t tail = 0;
  memcpy(&tail, p + 8 * words, bytes % 8);
  return mix64(s ^ mix64(tail ^ bytes));
}

int comm_check_same(const void *buf, size_t bytes, const char *what) {
  if (world.size == 1) return 0;
  uint64_t mine = comm_checksum(buf, bytes), root = mine;
  if (comm_broadcast(&root, sizeof root, 0)) return -1;
  // every rank learns which ranks differ: one flag each, summed
  double *differs = xcalloc((size_t)world.size, sizeof *differs);
  differs[world.rank] = mine != root;
  int rc = comm_allreduce_sum_f64(differs, (size_t)world.size);
  int bad = -1, n_bad = 0;
  for (int r = 0; r < world.size && !rc; r++)
    if (differs[r] > 0) {
      if (bad < 0) bad = r;
      n_bad++;
    }
  free(differs);
  if (rc) return -1;
  if (!n_bad) return 0;
  return igpt_err("the ranks diverged: %s of rank %d (and %d more of %d ranks) differ from rank 0's "
                  "(checksum %016llx here, %016llx on rank 0); the data-parallel ranks must stay "
                  "identical (a nondeterministic reduction, a hardware fault or different builds); "
                  "the last checkpoint written before this one is intact", what, bad, n_bad - 1,
                  world.size, (unsigned long long)mine, (unsigned long long)root);
}

void comm_finalize(int status) {
  comm_nccl_finalize();
  if (!world.mpi) return;
#ifdef IGPT_HAVE_MPI
  world.mpi = false;
  if (status == 0) MPI_Finalize();
  else MPI_Abort(MPI_COMM_WORLD, status);
#else
  (void)status;
#endif
}

const char *comm_backends(void) {
  static char buf[192];
  const char *nccl = comm_nccl_version();
#ifdef IGPT_HAVE_MPI
  char lib[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(lib, &len);
  lib[strcspn(lib, ",\n")] = 0;  // "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4"
  snprintf(buf, sizeof buf, "mpi (%.100s)%s%.40s", lib, nccl ? ", " : "", nccl ? nccl : "");
#else
  snprintf(buf, sizeof buf, "%s%s", nccl ? nccl : "none",
           nccl ? " (one rank without MPI, or ranks from srun)" : " (single process only; Open MPI not found at build time)");
#endif
  return buf;
}
