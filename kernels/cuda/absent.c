// absent: the CUDA backend's entry point in a build without nvcc (the Makefile compiles this file
// only then): every request for the GPU is refused with the reason.
#include <stdio.h>
#include "kernels/backend.h"

int cuda_backend_open(bool bf16, int ordinal, const backend **out, char *why, size_t n) {
  (void)bf16, (void)ordinal;
  *out = NULL;
  snprintf(why, n, "this igpt was built without CUDA (no nvcc at build time); rebuild with "
                   "/usr/local/cuda/bin/nvcc present");
  return -1;
}
