// libFuzzer harness for the safetensors reader: any byte string must parse or fail cleanly,
// and every tensor it accepts must lie inside the buffer.
#include "safetensors.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  st_file f;
  memset(&f, 0, sizeof f);
  if (st_parse(&f, data, size, "fuzz") != 0) return 0;
  for (int i = 0; i < f.n; i++) {
    const st_tensor *t = &f.tensors[i];
    size_t nb = st_numel(t) * st_dtype_size(t->dtype);
    const uint8_t *p = t->data;
    if (p < data || p + nb > data + size) abort();
    volatile uint8_t sink = 0;
    for (size_t k = 0; k < nb; k++) sink ^= p[k];  // touch every byte under ASan
    (void)sink;
  }
  st_get(&f, "x");
  st_meta(&f, "config");
  st_close(&f);
  return 0;
}
