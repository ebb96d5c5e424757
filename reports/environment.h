// environment: what machine and libraries produced a result (CPU, cores, memory, GPU, CUDA,
// library versions), as the "environment" object of results.json / report.json.
// The orchestrator should record it where the jobs ran; igpt report falls back to it.
#pragma once
#include <jansson.h>

// A new object; collected_by names the caller ("igpt report", "igpt run").
json_t *environment_collect(const char *collected_by);
