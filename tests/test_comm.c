// comm: the communicator in a world of one (no launcher: every collective leaves the data as it
// is), the checksum that compares ranks (any changed word changes it), the build's communicators
// in `igpt --version`, and, on a machine with a GPU, a one-rank NCCL all-reduce. The multi-rank
// paths run under mpirun in test_dist.c.
#include "testutil.h"
#include "engine/comm.h"
#ifdef IGPT_HAVE_NCCL
#include <cuda_runtime.h>
#endif

Test(comm, a_world_of_one_without_a_launcher) {
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("SLURM_STEP_NUM_TASKS");
  cr_assert_eq(comm_init(), 0, "%s", igpt_errmsg());
  cr_assert_eq(comm_size(), 1);
  cr_assert_eq(comm_rank(), 0);
  cr_assert_str_eq(comm_launcher(), "single");
  float x[3] = {1.5f, -2.0f, 3.25f};
  double d[2] = {0.1, 7};
  cr_assert_eq(comm_allreduce_avg(x, 3), 0);
  cr_assert_eq(comm_allreduce_avg_f64(d, 2), 0);
  cr_assert_eq(comm_broadcast(x, sizeof x, 0), 0);
  cr_assert_eq(comm_barrier(), 0);
  cr_assert(x[0] == 1.5f && x[1] == -2.0f && x[2] == 3.25f && d[0] == 0.1 && d[1] == 7, "a world of one changed the data");
  cr_assert_eq(comm_check_same(x, sizeof x, "x"), 0);
}

Test(comm, the_batch_script_itself_is_one_process) {
  // sbatch --ntasks=4 sets SLURM_NTASKS and SLURM_PROCID in the batch script too; only srun's
  // tasks have SLURM_STEP_NUM_TASKS, so a plain command in the script must stay a world of one.
  setenv("SLURM_NTASKS", "4", 1);
  setenv("SLURM_PROCID", "0", 1);
  unsetenv("SLURM_STEP_NUM_TASKS");
  unsetenv("OMPI_COMM_WORLD_SIZE");
  cr_assert_eq(comm_init(), 0, "%s", igpt_errmsg());
  cr_assert_eq(comm_size(), 1);
}

Test(comm, the_checksum_sees_every_changed_word) {
  enum { N = 1001 };  // not a multiple of 8 bytes' worth: the tail counts too
  uint8_t *a = xmalloc(N * 4);
  for (int i = 0; i < N * 4; i++) a[i] = (uint8_t)(i * 37 + 11);
  uint64_t c = comm_checksum(a, N * 4);
  cr_assert_eq(comm_checksum(a, N * 4), c, "not deterministic");
  for (int i = 0; i < N * 4; i += 97) {
    for (int bit = 0; bit < 8; bit += 3) {
      a[i] ^= (uint8_t)(1u << bit);
      cr_assert_neq(comm_checksum(a, N * 4), c, "byte %d bit %d flipped, same checksum", i, bit);
      a[i] ^= (uint8_t)(1u << bit);
    }
  }
  uint8_t w[8];  // two words swapped
  memcpy(w, a, 8); memcpy(a, a + 8, 8); memcpy(a + 8, w, 8);
  cr_assert_neq(comm_checksum(a, N * 4), c, "swapped words, same checksum");
  memcpy(a + 8, a, 8); memcpy(a, w, 8);
  cr_assert_eq(comm_checksum(a, N * 4), c);
  cr_assert_neq(comm_checksum(a, N * 4 - 1), c, "a shorter buffer, same checksum");
  free(a);
}

Test(comm, version_names_the_communicators_built) {
  char *bin = igpt_bin(), *dir = test_tmpdir("comm");
  char *cmd = xasprintf("%s --version > %s/v", bin, dir), *p = xasprintf("%s/v", dir);
  cr_assert_eq(run_cmd(cmd), 0);
  uint8_t *text;
  size_t len;
  cr_assert_eq(file_read_all(p, &text, &len), 0);
  text = xrealloc(text, len + 1);
  text[len] = 0;
  cr_assert(strstr((char *)text, "communicators: "), "%s", text);
#ifdef IGPT_HAVE_MPI
  cr_assert(strstr((char *)text, "mpi (Open MPI"), "built with MPI: %s", text);
#else
  cr_assert(strstr((char *)text, "single process"), "built without MPI: %s", text);
#endif
#ifdef IGPT_HAVE_NCCL
  cr_assert(strstr((char *)text, "nccl "), "built with NCCL: %s", text);
#endif
  free(text); free(cmd); free(p); free(bin);
  rm_rf(dir);
  free(dir);
}

Test(comm, nccl_one_rank_all_reduce_on_the_gpu) {
#ifndef IGPT_HAVE_NCCL
  cr_skip_test("built without NCCL (no nccl.h in /usr/local/cuda/include)");
#else
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) cr_skip_test("no GPU: the NCCL all-reduce needs one");
  char *dir = test_tmpdir("comm-nccl");
  cr_assert_eq(comm_nccl_init(dir), 0, "%s", igpt_errmsg());
  enum { N = 1 << 16 };
  float *h = xmalloc(N * sizeof *h), *back = xmalloc(N * sizeof *back), *d = NULL;
  for (int i = 0; i < N; i++) h[i] = (float)i / 7.0f - 100.0f;
  cr_assert_eq(cudaMalloc((void **)&d, N * sizeof *d), cudaSuccess);
  cr_assert_eq(cudaMemcpy(d, h, N * sizeof *d, cudaMemcpyHostToDevice), cudaSuccess);
  cr_assert_eq(comm_allreduce_avg_device(d, N, NULL), 0, "%s", igpt_errmsg());
  cr_assert_eq(cudaMemcpy(back, d, N * sizeof *d, cudaMemcpyDeviceToHost), cudaSuccess);
  // one rank: the mean over ranks is the rank's own buffer, bit for bit (the single-process result)
  cr_assert_eq(memcmp(back, h, N * sizeof *h), 0, "one rank's NCCL average changed the buffer");
  cudaFree(d);
  comm_nccl_finalize();
  free(h); free(back);
  rm_rf(dir);
  free(dir);
#endif
}
