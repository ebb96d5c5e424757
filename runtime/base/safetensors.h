// safetensors: the one file format between verbs (weights, images, tokens, features).
// Reader: validates everything before anything is used (header length, JSON, dtypes, shapes,
// offsets inside the file, no overlaps) and maps the data read-only. Writer: collects borrowed
// tensors and writes the file atomically. Format: u64 LE header length, JSON header, data.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20)  // 100 MiB, as the reference implementation limits it

typedef enum { ST_BOOL, ST_U8, ST_I8, ST_U16, ST_I16, ST_F16, ST_BF16, ST_U32, ST_I32,
               ST_F32, ST_U64, ST_I64, ST_F64, ST_NDTYPES } st_dtype;

typedef struct {
  char *name;
  st_dtype dtype;
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  uint64_t begin, end;  // byte offsets into the data section
  const void *data;     // points into the mapped file
} st_tensor;

typedef struct {
  char *path;           // for messages
  int n;
  st_tensor *tensors;
  json_t *metadata;     // the "__metadata__" object, or NULL; owned
  void *map;            // whole file (mmap or malloc'd copy)
  size_t map_len;
  int mapped;           // 1 when map came from mmap
} st_file;

size_t st_dtype_size(st_dtype dt);
const char *st_dtype_name(st_dtype dt);
size_t st_numel(const st_tensor *t);

int st_open(st_file *f, const char *path);  // 0 or -1 with igpt_err naming the file
// Parses a buffer already in memory (fuzzing, tests); buf must outlive f, which it initialises.
// name is for messages.
int st_parse(st_file *f, const void *buf, size_t len, const char *name);
void st_close(st_file *f);

const st_tensor *st_get(const st_file *f, const char *name);  // NULL when absent (no error set)
// The tensor, checked: present, of dtype dt, of ndim dims with shape (entries < 0 match any).
// NULL with an error naming the file, tensor, what was expected and what was found.
const st_tensor *st_expect(const st_file *f, const char *name, st_dtype dt, int ndim,
                           const int64_t *shape);
const char *st_meta(const st_file *f, const char *key);  // a metadata string or NULL

typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
// data is borrowed until st_writer_save returns; name is copied
void st_writer_add(st_writer *w, const char *name, st_dtype dt, int ndim, const int64_t *shape,
                   const void *data);
void st_writer_meta(st_writer *w, const char *key, const char *value);
int st_writer_save(st_writer *w, const char *path);  // atomic: appears whole or not at all
void st_writer_free(st_writer *w);
