// fault: the suite's one fault-injection point, for the crash-and-resume tests. A module that
// wants to be killable at a named point calls fault_point(point, step); it does nothing unless
// IGPT_TEST_KILL_AFTER_STEP=k is set and step == k, then it raises SIGKILL when point equals
// IGPT_TEST_KILL_AT (default "checkpoint"). Points used: "checkpoint" (after step k's checkpoint),
// "step" (in step k+1, after backward, before the update), "between" (checkpoint_save's weights
// written, its state not yet). fault_armed says whether a point is armed without killing, for a
// caller that injects another fault there: "diverge" (train: the last data-parallel rank's
// weights change before step k's checkpoint check), "term" (train: the last rank alone gets
// SIGTERM in step k, before the ranks agree on stopping).
#pragma once
#include <stdbool.h>
#include <stdint.h>

void fault_point(const char *point, int64_t step);
bool fault_armed(const char *point, int64_t step);
