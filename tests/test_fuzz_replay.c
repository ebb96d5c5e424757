// fuzz replay: every input kept under tests/fixtures/fuzz/<harness>/ (seeds and inputs that once
// crashed a decoder) goes through the same entry points as the libFuzzer harnesses, so `make test`
// (under ASan+UBSan with SAN=1) guards the fixes without clang.
#include "testutil.h"
#include "fuzz/fuzz_decode.h"

Test(fuzz_replay, cifar) { cr_assert_gt(fuzz_replay_dir("cifar", fuzz_cifar_one), 0); }
Test(fuzz_replay, stl10) { cr_assert_gt(fuzz_replay_dir("stl10", fuzz_stl10_one), 0); }
Test(fuzz_replay, idx) { cr_assert_gt(fuzz_replay_dir("idx", fuzz_idx_one), 0); }
Test(fuzz_replay, npy) { cr_assert_gt(fuzz_replay_dir("npy", fuzz_npy_one), 0); }
Test(fuzz_replay, safetensors) { cr_assert_gt(fuzz_replay_dir("safetensors", fuzz_safetensors_one), 10); }
Test(fuzz_replay, pickle) { cr_assert_gt(fuzz_replay_dir("pickle", fuzz_pickle_one), 0); }
