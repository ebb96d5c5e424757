// libFuzzer harness for the npy decoder (tests/fuzz/fuzz_decode.h says what the input holds).
#include "fuzz_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_npy_one(data, size); }
