// tf_table: the LevelDB-format table that holds a TensorFlow bundle's .index (REFERENCE.md
// section 7), read and written by Debian's libleveldb (leveldb::Table / leveldb::TableBuilder,
// bytewise keys, every block's masked crc32c verified, Snappy blocks decompressed). LevelDB's C
// API has no table reader, so tf_table.cc wraps the C++ one behind this C interface. Messages
// land in err (caller's buffer); the C callers turn them into igpt_err.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TF_TABLE_ERR 512

typedef struct tf_table tf_table;

// Opens the table in file path (NULL and err filled on failure: missing file, bad footer or
// index block). tf_table_open_mem reads a copy of buf instead (fuzzing); name is for messages.
tf_table *tf_table_open(const char *path, char err[TF_TABLE_ERR]);
tf_table *tf_table_open_mem(const void *buf, size_t len, const char *name, char err[TF_TABLE_ERR]);
void tf_table_close(tf_table *t);
// The next entry in key order: 1 with *key/*val valid until the next call, 0 at the end, -1 with
// err filled on a damaged block (bad crc, bad Snappy data, keys out of order).
int tf_table_next(tf_table *t, const char **key, size_t *klen, const char **val, size_t *vlen,
                  char err[TF_TABLE_ERR]);

// A table written entry by entry, keys in strictly increasing bytewise order; snappy != 0
// compresses the blocks as TensorFlow's writer may. Round trips in tests and `igpt export --to tf`.
typedef struct tf_table_writer tf_table_writer;
tf_table_writer *tf_table_writer_open(const char *path, int snappy, char err[TF_TABLE_ERR]);
int tf_table_writer_add(tf_table_writer *w, const char *key, size_t klen, const void *val, size_t vlen,
                        char err[TF_TABLE_ERR]);
// Finishes and closes the file (0), or -1 with err; frees w either way.
int tf_table_writer_finish(tf_table_writer *w, char err[TF_TABLE_ERR]);

#ifdef __cplusplus
}
#endif
