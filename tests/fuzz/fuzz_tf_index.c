// libFuzzer harness for the TF bundle index and entry parsing (tests/fuzz/fuzz_tf.h says what the
// input holds).
#include "fuzz_tf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_tf_index_one(data, size); }
