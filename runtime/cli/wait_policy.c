// wait_policy: how igpt's OpenMP threads wait between parallel regions. libgomp's default spins a
// waiting thread for about 3 ms before it sleeps; on a machine whose cores another process keeps
// busy, the spinning threads take the time slices the working thread needs, and small parallel
// regions (the probe's, a small model's training step) run many times slower than the load
// explains (measured in ci/bench-load.sh). Sleeping threads (OMP_WAIT_POLICY=passive) degrade
// in proportion to the load. libgomp reads its environment once, when it is loaded, before main:
// a setenv in main comes too late for this process, so igpt sets passive and main executes igpt
// again. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.
#include "cli/cli.h"
#include <stdlib.h>

int wait_policy_choose(void) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return 0;  // the user's choice (or done)
  return setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0;
}
