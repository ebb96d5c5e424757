// libFuzzer harness for the native model file: any byte string must load as a model or fail with
// an error message (safetensors reader, config JSON in __metadata__, every tensor checked against
// the config), never crash. Links kernels/cpu too (model.c composes the ops).
#include "engine/model.h"
#include "base/safetensors.h"
#include "base/util.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  st_file f;
  memset(&f, 0, sizeof f);
  if (st_parse(&f, data, size, "fuzz") != 0) return 0;
  igpt_err_clear();
  model *m = model_from_st(&f);
  if (!m && !igpt_errmsg()[0]) __builtin_trap();  // a failure always says why
  model_free(m);
  st_close(&f);
  return 0;
}
