// cli: shared helpers for the verbs: usage errors, the common flags and results on stdout.
#pragma once
#include <jansson.h>

#define EXIT_USAGE 2

#define VERB(name, summary) int cmd_##name(int argc, char **argv) __attribute__((weak));
#include "cli/verbs.def"
#undef VERB

// Prints "igpt VERB: msg" and a hint to run --help, returns EXIT_USAGE.
int usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prints the current igpt_errmsg() as "igpt VERB: error: ...", returns 1.
int fail(const char *verb);
// Writes a JSON result to stdout (one line), takes ownership.
void print_json(json_t *result);
// Parses integers and reals of flags with range checks; usage error message on failure.
int parse_long(const char *verb, const char *flag, const char *s, long lo, long hi, long *out);
int parse_double(const char *verb, const char *flag, const char *s, double lo, double hi, double *out);
// Before anything else in main: OpenMP threads that sleep rather than spin when they wait, unless
// the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT (cli/wait_policy.c says why and how). May not return
// (it executes the program again with the policy set).
void wait_policy_choose(char **argv);
