// fault: SIGKILL at a named point when the test environment asks for it (base/fault.h).
#include "base/fault.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>

void fault_point(const char *point, int64_t step) {
  const char *k = getenv("IGPT_TEST_KILL_AFTER_STEP");
  if (!k || atoll(k) != step) return;
  const char *at = getenv("IGPT_TEST_KILL_AT");
  if (!strcmp(at ? at : "checkpoint", point)) raise(SIGKILL);
}
