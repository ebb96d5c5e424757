// outcomes: per-image outcomes as hex; see outcomes.h.
#include "base/outcomes.h"
#include <string.h>

static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

int correct_bit(const char *hex, int64_t i) {
  size_t len = strlen(hex);
  if (i < 0 || (size_t)(i / 4) >= len) return -1;
  int v = hex_value(hex[i / 4]);
  return v < 0 ? -1 : (v >> (3 - i % 4)) & 1;
}

void correct_hex(const uint8_t *right, int64_t n, char *hex) {
  static const char digits[] = "0123456789abcdef";
  int64_t nd = (n + 3) / 4;
  for (int64_t d = 0; d < nd; d++) {
    int v = 0;
    for (int k = 0; k < 4; k++) v |= (4 * d + k < n && right[4 * d + k]) << (3 - k);
    hex[d] = digits[v];
  }
  hex[nd] = 0;
}
