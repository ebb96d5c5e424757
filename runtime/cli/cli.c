// cli: shared helpers for verbs. See cli.h.
#include "cli/cli.h"
#include "engine/device.h"
#include "base/util.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int usage_error(const char *verb, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "igpt %s: ", verb);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'igpt %s --help'.\n", verb);
  return EXIT_USAGE;
}

int fail(const char *verb) {
  fprintf(stderr, "igpt %s: error: %s\n", verb, igpt_errmsg());
  return 1;
}

void print_json(json_t *result) {
  json_dumpf(result, stdout, JSON_COMPACT | JSON_SORT_KEYS);
  fputc('\n', stdout);
  fflush(stdout);
  json_decref(result);
}

int parse_long(const char *verb, const char *flag, const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return usage_error(verb, "%s wants an integer in [%ld, %ld], got '%s'", flag, lo, hi, s);
  *out = v;
  return 0;
}

int parse_double(const char *verb, const char *flag, const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi))
    return usage_error(verb, "%s wants a number in [%g, %g], got '%s'", flag, lo, hi, s);
  *out = v;
  return 0;
}

int device_flags(const char *verb, const char *device, const char *precision) {
  if (device && strcmp(device, "cpu") && strcmp(device, "cuda") && strcmp(device, "auto"))
    return usage_error(verb, "--device wants cpu, cuda or auto, got '%s'", device);
  if (precision && strcmp(precision, "bf16") && strcmp(precision, "fp32"))
    return usage_error(verb, "--precision wants bf16 or fp32, got '%s'", precision);
  return device_select(device, precision) ? fail(verb) : 0;
}
