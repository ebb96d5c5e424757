// cpu: the CPU ops' threading policy. The one thread pool is OpenMP's: OpenBLAS's own pthreads
// would compete with it (each pool spin-waits while the other works), so the ops split their sgemm
// calls across OpenMP threads and run each call single-threaded inside the parallel region.
// Loops smaller than PAR_MIN elements run on one thread: waking the pool costs more than they do.
#pragma once
#include <cblas.h>

#define PAR_MIN 32768

// Sets OpenBLAS to one thread, returns the previous count for blas_threads_restore.
static inline int blas_threads_off(void) {
  int n = openblas_get_num_threads();
  if (n != 1) openblas_set_num_threads(1);
  return n;
}
static inline void blas_threads_restore(int n) {
  if (n != 1) openblas_set_num_threads(n);
}

// Thread t of nt's share [*lo, *hi) of n items, in multiples of `align` (but the last share).
static inline void blas_share(int n, int t, int nt, int align, int *lo, int *hi) {
  int chunk = (n + nt - 1) / nt;
  chunk = (chunk + align - 1) / align * align;
  *lo = t * chunk < n ? t * chunk : n;
  *hi = *lo + chunk < n ? *lo + chunk : n;
}
