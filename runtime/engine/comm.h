// comm: the data-parallel communicator. One world of ranks (one process per GPU, or per CPU
// share), started by mpirun (OMPI_COMM_WORLD_*) or srun (SLURM_PROCID, SLURM_STEP_NUM_TASKS);
// without either it is a world of one and every call is a no-op. CPU buffers go through MPI
// (Open MPI, built when found), GPU buffers through NCCL (comm_nccl.c, built when nccl.h is in
// /usr/local/cuda). The world is process-wide, as MPI_COMM_WORLD is: train, finetune and the
// features verb call comm_init(), the command's main calls comm_finalize() with the exit status.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Reads the launcher's environment and joins the world (MPI_Init when it has more than one
// rank). Idempotent. -1 with igpt_err when the world needs MPI and this build has none.
int comm_init(void);
int comm_rank(void);        // 0..size-1 (0 before comm_init)
int comm_size(void);        // ranks in the world (1 before comm_init)
int comm_local_rank(void);  // rank among this node's ranks: the GPU a rank takes
const char *comm_launcher(void);  // "mpirun", "srun" or "single"
bool comm_mpi_active(void);       // the world runs over MPI (more than one rank, MPI built)

// In place: every rank ends with the element-wise mean over ranks (sum then / size). The same
// bytes on every rank (MPI_Allreduce's result is distributed, not recomputed per rank).
int comm_allreduce_avg(float *buf, size_t n);
int comm_allreduce_avg_f64(double *buf, size_t n);
// In place: the element-wise sum over ranks (counts, flags).
int comm_allreduce_sum_f64(double *buf, size_t n);
// Rank r's slice of N rows split as evenly as can be: [N r / size, N (r + 1) / size).
static inline int64_t comm_slice_start(int64_t N, int r, int size) { return N * r / size; }
// root's bytes into every rank's buf.
int comm_broadcast(void *buf, size_t bytes, int root);
int comm_barrier(void);

// Every rank's bytes must equal rank 0's (weights and optimizer state at a checkpoint): a
// 64-bit checksum of buf is compared; -1 on every rank with an error naming `what`, the ranks
// that differ and both checksums otherwise.
int comm_check_same(const void *buf, size_t bytes, const char *what);
uint64_t comm_checksum(const void *buf, size_t bytes);

// Leaves the world: MPI_Finalize after a verb succeeded (status 0), MPI_Abort(status) after it
// failed so that the other ranks, maybe waiting in a collective, stop too. No-op in a world of one.
void comm_finalize(int status);

// The communicators this binary was built with, for `igpt --version`: "mpi (Open MPI 4.1.4),
// nccl 2.27" or "none (single process only)".
const char *comm_backends(void);

// NCCL, for GPU buffers (comm_nccl.c; -1 with igpt_err when not built). comm_nccl_init shares
// rank 0's unique id by MPI broadcast, or without MPI (a world of one, or srun without an MPI
// plugin) through the file id_dir/nccl.id written atomically by rank 0. The device is the
// current CUDA device (the backend picks it: comm_local_rank()).
int comm_nccl_init(const char *id_dir);
bool comm_nccl_ready(void);
// In place on the device: the mean over ranks of dbuf [n] floats, on the CUDA stream (NULL: the
// default stream); returns after the stream has finished it.
int comm_allreduce_avg_device(float *dbuf, size_t n, void *stream);
void comm_nccl_finalize(void);
const char *comm_nccl_version(void);  // NULL when not built
