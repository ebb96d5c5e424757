// escape: HTML entity escaping and base64 for data: URIs. See escape.h.
#include "reports/escape.h"
#include "base/util.h"
#include <openssl/evp.h>

void html_escape(FILE *out, const char *s) {
  if (!s) return;
  for (; *s; s++) {
    switch (*s) {
      case '&': fputs("&amp;", out); break;
      case '<': fputs("&lt;", out); break;
      case '>': fputs("&gt;", out); break;
      case '"': fputs("&quot;", out); break;
      case '\'': fputs("&#39;", out); break;
      default: fputc(*s, out);
    }
  }
}

char *base64_encode(const void *data, size_t n) {
  // EVP_EncodeBlock takes an int length; a report image is far below 1.5 GB
  if (n > (size_t)3 << 29) igpt_die("base64_encode: %zu bytes is too large for one data: URI", n);
  char *out = xmalloc(4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)out, data, (int)n);
  return out;
}
