// fuzz_torch: PyTorch's pickled state dict (datasets/decode.h decode_torch_pickle, the data.pkl of
// a pytorch_model.bin) on an arbitrary byte string, shared by the libFuzzer harness
// (tests/fuzz/fuzz_torch_pickle.c) and the replay of the kept inputs (tests/test_torch_bin.c). It
// must decode or fail with a message naming the file and offset, never crash or read out of
// bounds; decoded tensors lie inside their storages.
#pragma once
#include "base/util.h"
#include "datasets/decode.h"
#include <stdlib.h>
#include <string.h>

static int fuzz_torch_pickle_one(const uint8_t *d, size_t n) {
  torch_tensor *t;
  int nt;
  igpt_err_clear();
  if (decode_torch_pickle(d, n, "fuzz.pkl", &t, &nt) == 0) {
    for (int i = 0; i < nt; i++) {
      uint64_t numel = 1;
      for (int k = 0; k < t[i].ndim; k++) numel *= (uint64_t)t[i].shape[k];
      if (t[i].offset < 0 || (uint64_t)t[i].offset + numel > (uint64_t)t[i].storage_numel || !t[i].name || !t[i].storage)
        abort();
    }
    torch_tensors_free(t, nt);
  } else if (!strstr(igpt_errmsg(), "fuzz.pkl: byte offset")) abort();
  return 0;
}
