// libFuzzer harness for the pickle decoder (tests/fuzz/fuzz_decode.h says what the input holds).
#include "fuzz_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_pickle_one(data, size); }
