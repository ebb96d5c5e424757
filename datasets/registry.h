// registry: datasets/registry.json loaded and validated (Jansson). Owns the description of every
// data set the suite can fetch: its files, their mirrors in order, what is known of their size and
// digests (unknown fields are null in the JSON and marked unknown here), how to unpack them and
// the checksums of the members or of the decompressed content. A malformed registry is refused
// with the file and the JSON path of the wrong field ("registry.json: $.datasets.x.files[0].size").
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef enum { REG_DOWNLOAD, REG_MANUAL, REG_EMBEDDED } reg_kind;
typedef enum { FMT_BINARY, FMT_GZIP, FMT_TAR_GZ, FMT_NPY, FMT_ZIP } reg_format;

// What is known of some bytes: size -1 and empty digests mean unknown.
typedef struct {
  int64_t size;
  char sha256[65];
  char md5[33];
} reg_digest;

typedef struct {
  char *path;         // relative to downloads/<set>/
  reg_digest want;
} reg_member;

typedef struct {
  char *name;           // file name under downloads/<set>/
  char **mirrors;       // URLs, tried in order
  int n_mirrors;
  reg_digest want;      // of the file as downloaded
  int64_t max_size;     // size unknown: the most bytes a download may bring, -1: fetch's default cap
  reg_format format;
  bool has_decompressed;  // gzip: the decompressed content is authoritative
  reg_digest decompressed;
  char *unpack;         // archives: top directory the archive holds (and is unpacked to), or NULL
  reg_member *members;  // archives: members checked after unpacking
  int n_members;
  char *note;           // why fields are unknown, or NULL
} reg_file;

typedef struct {
  char *name, *description, *instructions;  // instructions: manual downloads only
  reg_kind kind;
  reg_file *files;
  int n_files;
} reg_dataset;

typedef struct {
  char *path;
  reg_dataset *sets;
  int n_sets;
} registry;

// The registry path: $IGPT_REGISTRY, else $IGPT_ROOT/datasets/registry.json, else
// datasets/registry.json under the current directory, else the one of the checkout the running
// binary sits in (<exe dir>/../datasets/registry.json). Caller frees.
char *registry_default_path(void);
// Loads and validates; on failure sets the error (file and JSON path) and leaves r empty.
int registry_load(registry *r, const char *path);
void registry_free(registry *r);
// NULL with an error listing the known names when absent.
const reg_dataset *registry_find(const registry *r, const char *name);
const char *reg_format_name(reg_format f);
bool reg_digest_known(const reg_digest *d);  // any of size, sha256, md5
