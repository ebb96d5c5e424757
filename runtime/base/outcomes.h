// outcomes: each test image's right/wrong outcome as hex (the "test_correct" of the probe's and
// the fine-tune's JSON), so two classifiers can be compared image by image (reports/stats.h's
// McNemar test) without shipping the predictions.
#pragma once
#include <stdint.h>

// Image i is bit 3 - i % 4 of hex digit i / 4 (the first image is the high bit of the first digit).
// 1 when image i is right, 0 when wrong, -1 when i is past the string or the digit is not hex.
int correct_bit(const char *hex, int64_t i);
// Fills hex (NUL-terminated, (n + 3) / 4 + 1 bytes) from right[n] (nonzero: right).
void correct_hex(const uint8_t *right, int64_t n, char *hex);
