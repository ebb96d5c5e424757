// fuzz_tf: the TensorFlow bundle index parsing (interop/tf_bundle.h) on an arbitrary byte string,
// shared by the libFuzzer harness (tests/fuzz/fuzz_tf_index.c) and the replay of the kept inputs
// (tests/test_tf_import.c). d[0] bit 0 clear: the rest is a whole .index file (LevelDB table,
// header, every entry); set: the rest is one BundleEntryProto, checked against d[1] & 7 shards.
// Each must parse or fail with a message naming the file, never crash or read out of bounds.
#pragma once
#include "base/util.h"
#include "interop/tf_bundle.h"
#include <stdlib.h>
#include <string.h>

static int fuzz_tf_index_one(const uint8_t *d, size_t n) {
  if (n < 2) return 0;
  igpt_err_clear();
  if (d[0] & 1) {
    tf_entry e;
    int shards = 1 + (d[1] & 7);
    if (tf_entry_parse(d + 2, n - 2, "t", "fuzz.index", shards, &e) == 0) {
      size_t es = tf_dtype_size(e.dtype);
      uint64_t numel = 1;
      for (int i = 0; i < e.ndim; i++) numel *= (uint64_t)e.shape[i];
      if (e.shard < 0 || e.shard >= shards || (es && e.size != numel * es)) abort();
    } else if (!strstr(igpt_errmsg(), "fuzz.index")) abort();
    return 0;
  }
  tf_bundle b;
  if (tf_bundle_open_mem(&b, d + 1, n - 1, "fuzz.index") == 0) {
    for (int i = 0; i < b.n; i++) {
      const tf_entry *e = &b.entries[i];
      if (e->shard < 0 || e->shard >= b.num_shards || tf_bundle_find(&b, e->name) == NULL) abort();
    }
    tf_bundle_close(&b);
  } else if (!strstr(igpt_errmsg(), "fuzz.index")) abort();
  return 0;
}
