// tf_bundle: TensorFlow's V2 tensor bundle (a checkpoint written by tf.train.Saver), read without
// TensorFlow (REFERENCE.md section 7): PREFIX.index is a LevelDB table (tf_table.h) whose key ""
// holds a BundleHeaderProto and every other key a tensor's BundleEntryProto (decoded by
// protobuf-c from tf_bundle.proto); each tensor is `size` raw little-endian bytes at `offset` in
// PREFIX.data-SSSSS-of-NNNNN, checked by its masked crc32c (Intel ISA-L's crc32_iscsi computes
// CRC-32C). V1 checkpoints (SavedTensorSlices), big-endian bundles and partitioned (sliced)
// tensors are refused. Every message names the file and the tensor.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TF_MAX_DIMS 8

// TensorFlow DataType values (types.proto) that a bundle entry may carry.
enum { TF_FLOAT = 1, TF_DOUBLE = 2, TF_INT32 = 3, TF_UINT8 = 4, TF_INT16 = 5, TF_INT8 = 6, TF_STRING = 7,
       TF_INT64 = 9, TF_BOOL = 10, TF_BFLOAT16 = 14, TF_UINT16 = 17, TF_HALF = 19, TF_UINT32 = 22,
       TF_UINT64 = 23 };

typedef struct {
  char *name;            // the table key, e.g. "model/h0/attn/q_proj"
  int dtype;             // TF_*
  int ndim;              // 0 for a scalar
  int64_t shape[TF_MAX_DIMS];
  int shard;             // data file index
  uint64_t offset, size; // bytes in that file
  uint32_t crc32c;       // masked, as stored
} tf_entry;

typedef struct {
  char *prefix;          // PREFIX: the files are PREFIX.index and PREFIX.data-*
  char *index_path;
  int num_shards;
  int n;
  tf_entry *entries;     // in key order (bytewise)
} tf_bundle;

// The name of a DataType ("DT_FLOAT") and its element size in bytes (0: variable, as DT_STRING).
const char *tf_dtype_name(int dtype);
size_t tf_dtype_size(int dtype);

// CRC-32C (Castagnoli) of n bytes continuing from crc (0 to start), and the stored form.
uint32_t tf_crc32c_extend(uint32_t crc, const void *data, size_t n);
static inline uint32_t tf_crc32c(const void *data, size_t n) { return tf_crc32c_extend(0, data, n); }
static inline uint32_t tf_crc_mask(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

// Resolves path to a bundle prefix: a DIR (its `checkpoint` file's model_checkpoint_path, else
// its one *.index), PREFIX.index, or PREFIX itself. Caller frees. NULL with igpt_err.
char *tf_bundle_resolve(const char *path);
// Opens and checks the whole index (header, every entry's dtype, shape, size and shard). A file
// given as PREFIX that is itself a table is a V1 checkpoint: refused, saying so.
int tf_bundle_open(tf_bundle *b, const char *path);
// The same for an index already in memory (fuzzing); name stands for the prefix and the file.
int tf_bundle_open_mem(tf_bundle *b, const void *index, size_t len, const char *name);
void tf_bundle_close(tf_bundle *b);
const tf_entry *tf_bundle_find(const tf_bundle *b, const char *name);  // NULL when absent
char *tf_bundle_shard_path(const tf_bundle *b, int shard);             // caller frees

// Decodes and checks one BundleEntryProto (the index's value for key `name`; where names the
// file in messages) against a bundle of num_shards shards. 0 or -1 with igpt_err; e->name is
// left NULL.
int tf_entry_parse(const void *val, size_t len, const char *name, const char *where, int num_shards,
                   tf_entry *e);

// Reads the n entries `which` (any order; each at most once), every shard they live in once, in
// offset order; each tensor's bytes are crc-checked and handed to sink (data valid during the
// call; the reader reuses one buffer of the largest tensor's size). A shard that is missing or
// shorter than its entries need fails before anything is read. Progress on stderr per shard
// when verbose. sink returns 0, or -1 (igpt_err) to stop.
typedef int (*tf_sink)(void *ctx, const tf_entry *e, const void *data);
int tf_bundle_read(const tf_bundle *b, int n, const tf_entry *const *which, tf_sink sink, void *ctx,
                   bool verbose);

// Writing (round trips in tests, the stand-in checkpoints of `igpt export --to tf`): entries
// added in any order, each to a shard (0..num_shards-1) at that shard's end; the index (sorted)
// is written on finish; every file appears atomically (written beside, then renamed).
typedef struct tf_bundle_writer tf_bundle_writer;
tf_bundle_writer *tf_bundle_writer_new(const char *prefix, int num_shards, bool snappy);
// nbytes of data (copied) as tensor name of dtype and shape in shard.
void tf_bundle_writer_add(tf_bundle_writer *w, const char *name, int shard, int dtype, int ndim,
                          const int64_t *shape, const void *data, size_t nbytes);
int tf_bundle_writer_finish(tf_bundle_writer *w);  // 0 or -1 with igpt_err; frees w
