// npy: NumPy .npy arrays, the format of OpenAI's iGPT files (kmeans_centers.npy, the quantised
// {cifar10,imagenet}_{trX,...}.npy sets). Reader: format versions 1.0, 2.0 and 3.0, little- or
// big-endian, dtypes u1 i1 u2 i2 u4 i4 u8 i8 f4 f8 (and b1), C order only; it validates the whole
// header and that the shape agrees with the file size before any element is used, and refuses
// Fortran order, structured and object dtypes (pickles). Elements are converted to a requested
// element type (a safetensors dtype), with a range check. Writer: version 1.0, little-endian, atomic.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/safetensors.h"

#define NPY_MAX_DIMS ST_MAX_DIMS
#define NPY_MAX_HEADER (1u << 20)  // a header longer than 1 MiB is not a plain array's

typedef struct {
  char *path;                    // for messages; owned
  int major, minor;              // format version
  st_dtype dtype;                // stored element type
  int big_endian;                // stored byte order (1-byte types: 0)
  int ndim;
  int64_t shape[NPY_MAX_DIMS];
  size_t numel;
  size_t data_offset;            // byte offset of the first element in the file
  const uint8_t *data;           // the elements, in the stored byte order, possibly unaligned
  void *map;                     // whole file when opened with npy_open
  size_t map_len;
} npy_array;

// Opens and validates a file (mapped read-only). 0, or -1 with an error naming the file and offset
// (nothing to close then).
int npy_open(npy_array *a, const char *path);
// Parses a buffer already in memory (tests, fuzzing); buf must outlive a; nothing to close after
// a failure. name is for messages.
int npy_parse(npy_array *a, const void *buf, size_t len, const char *name);
void npy_close(npy_array *a);

// Converts every element to type `to` into out (numel * st_dtype_size(to) bytes, native order).
// Integers out of the range of `to`, and non-integral or non-finite floats converted to an
// integer type, are errors naming the file, the element index and its byte offset.
// Float targets take any value (f8 -> f4 rounds to nearest).
int npy_convert(const npy_array *a, st_dtype to, void *out);
// Opens, checks the rank (ndim < 0: any), converts and closes: a malloc'd array or NULL.
// shape (NPY_MAX_DIMS entries) receives the shape; *ndim_out the rank when not NULL.
void *npy_load(const char *path, st_dtype to, int ndim, int64_t *shape, int *ndim_out);

// Writes a C-order little-endian array (version 1.0, header padded to 64 bytes) atomically.
// dt: U8 I8 U16 I16 U32 I32 U64 I64 F32 F64 BOOL.
int npy_write(const char *path, st_dtype dt, int ndim, const int64_t *shape, const void *data);
// The same into memory (tests): a malloc'd buffer and its length.
int npy_encode(st_dtype dt, int ndim, const int64_t *shape, const void *data, uint8_t **buf,
               size_t *len);
