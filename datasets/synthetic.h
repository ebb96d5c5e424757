// synthetic: the embedded data set, generated, never fetched: labelled 32x32 colour images of
// ten shape classes with random colours, sizes, positions, rotations, backgrounds and noise, so
// that raw pixels are a weak classifier and a model has to learn shapes. The smoke scale's data.
#pragma once
#include "datasets/decode.h"

#define SYNTH_CLASSES 10
extern const char *const synthetic_class_names[SYNTH_CLASSES];

// n images of size x size; image i has label i % 10 (balanced) and depends only on
// (seed, stream, i), so any prefix of a larger set is the smaller set.
void synthetic_generate(image_set *out, int64_t n, int size, uint64_t seed, uint64_t stream);
