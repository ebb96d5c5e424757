// prepare: a fetched data set to images files (or, for the official pre-quantised sets, tokens
// files). Reads DIR/downloads/<name>/, decodes, centre-crops and area-resizes, splits a
// class-stratified validation set off train, and publishes DIR/prepared/<name>-<size>/
// {train,val,test}.safetensors + meta.json atomically. The `igpt prepare` verb is runtime/cli/.
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { PREPARE_UNKNOWN, PREPARE_IMAGES, PREPARE_TOKENS } prepare_kind;

typedef struct {
  const char *name;          // registry name: cifar10, stl10, fashion-mnist, synthetic, igpt-cifar10...
  const char *data;          // data directory (downloads/ and prepared/ below it)
  const char *out;           // output directory, NULL: DATA/prepared/NAME-SIZE
  int size;                  // 16, 32, 48 or 64
  int64_t n_train, n_test;   // synthetic: set sizes; others: keep the first N of the source files (0: all),
                             // n_train counted before the validation split is taken out of it
  double val_fraction;       // < 0: the data set's own (REFERENCE.md section 3)
  uint64_t seed;
  bool force;                // rebuild even when meta.json records the same settings
  bool unlabeled;            // stl10: also unlabeled_X.bin into unlabeled.safetensors
  const char *registry;      // the registry the files are checked against, NULL: registry_default_path()
} prepare_opts;

// What NAME is: images (decoded and resized), tokens (official .npy sets) or unknown.
prepare_kind prepare_kind_of(const char *name);
// Prepares as o says. On success *result (caller frees) holds the output path, counts per split
// and class, and "skipped": true when the same settings were already prepared. -1 on failure.
int prepare_dataset(const prepare_opts *o, json_t **result);
