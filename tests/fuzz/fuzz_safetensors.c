// libFuzzer harness for the safetensors reader (tests/fuzz/fuzz_decode.h says what is checked).
#include "fuzz_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_safetensors_one(data, size); }
