// escape: writing strings from data into HTML and SVG safely. Every string that comes from a
// results file (class names, paths, errors, notes) goes through html_escape before it is written.
#pragma once
#include <stdio.h>

// Writes s with & < > " ' replaced by entities; NULL writes nothing.
void html_escape(FILE *out, const char *s);
// Base64 (RFC 4648, no line breaks) of n bytes; caller frees. Through OpenSSL's EVP_EncodeBlock.
char *base64_encode(const void *data, size_t n);
