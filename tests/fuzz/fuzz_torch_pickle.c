// libFuzzer harness for PyTorch state-dict pickles (tests/fuzz/fuzz_torch.h says what is checked).
#include "fuzz_torch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_torch_pickle_one(data, size); }
