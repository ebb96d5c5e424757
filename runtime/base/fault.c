// fault: SIGKILL at a named point when the test environment asks for it (base/fault.h).
#include "base/fault.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>

bool fault_armed(const char *point, int64_t step) {
  const char *k = getenv("IGPT_TEST_KILL_AFTER_STEP");
  if (!k || atoll(k) != step) return false;
  const char *at = getenv("IGPT_TEST_KILL_AT");
  return !strcmp(at ? at : "checkpoint", point);
}

void fault_point(const char *point, int64_t step) {
  if (fault_armed(point, step)) raise(SIGKILL);
}
