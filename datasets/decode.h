// decode: the raw formats of the data sets (CIFAR-10/100 binary, STL-10 binary, IDX gzip, the
// official iGPT .npy token arrays) into images in memory, u8 [N,H,W,3] row-major RGB plus labels;
// the images file of DESIGN.md (safetensors `images` U8 [N,H,W,3], `labels` I32 [N]); area
// resizing and centre cropping; the class-stratified validation split.
// Decoders parse a buffer already in memory (so the fuzzers reach them) and check everything
// before they trust it: a truncated or inconsistent input is refused with the file name and the
// byte offset where it went wrong, never read past its end.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/rng.h"

// n images of h x w, 3 channels, row-major (NHWC); labels in [0, n_classes), or -1 when unknown.
typedef struct {
  int64_t n;
  int h, w;
  int n_classes;
  uint8_t *pixels;  // [n, h, w, 3], owned
  int32_t *labels;  // [n], owned
} image_set;

void image_set_alloc(image_set *s, int64_t n, int h, int w, int n_classes);
void image_set_free(image_set *s);
// Appends b's images to a (same h, w); b is left untouched.
int image_set_append(image_set *a, const image_set *b);

// ---- raw formats; name is the file for messages ----
#define CIFAR_PX 32
#define CIFAR_RECORD_PIXELS (3 * CIFAR_PX * CIFAR_PX)
// CIFAR-10 binary: records of 1 label byte (0..9) + R, G, B planes, each row-major 32x32.
int decode_cifar10(const uint8_t *buf, size_t len, const char *name, image_set *out);
// CIFAR-100 binary: coarse label (0..19), fine label (0..99), 3072 pixel bytes; labels are the
// fine ones, the coarse ones go to coarse (may be NULL; malloc'd [n]).
int decode_cifar100(const uint8_t *buf, size_t len, const char *name, image_set *out,
                    int32_t **coarse);

#define STL10_PX 96
// STL-10 binary images: 3 x 96 x 96 per image, each channel plane stored column-major.
int decode_stl10_images(const uint8_t *buf, size_t len, const char *name, image_set *out);
// STL-10 labels, one byte 1..10 per image, stored as 0..9 into s->labels (s->n must match).
int decode_stl10_labels(const uint8_t *buf, size_t len, const char *name, image_set *s);

// IDX (decompressed): magic 0x00000803 for [n, rows, cols] u8 images (grey: the channel is
// repeated to RGB), 0x00000801 for [n] u8 labels (< n_classes), stored into s->labels.
int decode_idx_images(const uint8_t *buf, size_t len, const char *name, image_set *out);
int decode_idx_labels(const uint8_t *buf, size_t len, const char *name, image_set *s, int n_classes);
// gunzip a whole .gz buffer (zlib) into *out (malloc'd), refusing more than max_out bytes. Every
// member of a multi-member file is read (gzip -d's rule); bytes after the last member are an error.
int gunzip_buf(const uint8_t *buf, size_t len, const char *name, size_t max_out, uint8_t **out,
               size_t *out_len);

// The official iGPT arrays (openai/image-gpt, *_trX.npy etc.): X is [N, T] (or [N, n_px, n_px])
// palette indices of any integer dtype, all < vocab; Y is [N] class indices or [N, C] one-hot
// (integer or float). Tokens become u16 [N, T] (malloc'd), labels i32 [N] (malloc'd).
typedef struct {
  int64_t n, t;
  uint16_t *tokens;
  int32_t *labels;
  int n_classes;    // one-hot: C; indices: the largest + 1
  int label_width;  // Y was one-hot [N, C]: C; class indices [N]: 0
} token_set;
int decode_igpt_tokens(const uint8_t *buf, size_t len, const char *name, int vocab, token_set *out);
int decode_igpt_labels(const uint8_t *buf, size_t len, const char *name, token_set *s);
void token_set_free(token_set *s);

// ---- images files (safetensors) ----
// Writes `images` U8 [N,H,W,3] and `labels` I32 [N] atomically.
int images_save(const image_set *s, const char *path);
// Reads and checks an images file (shape, labels >= -1); the set owns copies.
int images_load(image_set *s, const char *path);
int tokens_save(const token_set *s, const char *path);

// ---- geometry ----
// Centre crop to the largest square, then area (box) resampling to size x size: each output
// pixel is the average of the input over its footprint, weighted by exact overlap, computed in
// integers and rounded half up, so integer factors (96 -> 32, 96 -> 48, 64 -> 32) are exact
// box averages and a constant image stays constant. Enlarging (28 -> 32) uses the same weights.
void resize_area(const uint8_t *src, int sh, int sw, uint8_t *dst, int dh, int dw);
void image_set_square_resize(const image_set *in, int size, image_set *out);

// ---- split ----
// Class-stratified validation split: from each class, round(frac * count) images drawn by a
// seeded shuffle (one rng stream per class) go to val, the rest stay in train; both keep the
// source order. Images with label -1 are treated as one more class.
void split_stratified(const image_set *all, double frac, uint64_t seed, image_set *train,
                      image_set *val);
// Images per class (counts[n_classes], caller frees).
int64_t *label_counts(const int32_t *labels, int64_t n, int n_classes);

// Downsampled ImageNet (Chrabaszcz et al. 2017, Imagenet32/64 zips): one pickled batch
// {'data': uint8 [N, 3*size*size] R, G, B planes, 'labels': [1..1000], ...} into images of
// size x size and labels 0..999. The pickle is read without running anything (decode_pickle.c):
// only numpy's array/dtype constructors are recognised, any other global is refused.
int decode_imagenet_batch(const uint8_t *buf, size_t len, const char *name, int size, image_set *out);

// PyTorch's state dict (the data.pkl of a torch.save zip: HF hub's pytorch_model.bin), read by the
// same non-executing machine with its own allow-list: collections.OrderedDict, torch's storage
// types and torch._utils._rebuild_tensor_v2 over persistent ids ('storage', type, key, location,
// numel); every other global is refused. Only dense row-major tensors inside their storage.
typedef struct {
  char *name;             // state-dict key
  char *storage;          // storage key: its bytes are the zip member <archive>/data/<storage>
  char dtype;             // 'f' float, 'h' bfloat16, 'i' signed, 'u' unsigned, 'b' bool
  int elsize;             // bytes per element
  int64_t storage_numel;  // elements of the storage
  int64_t offset;         // the tensor's first element in it
  int ndim;
  int64_t shape[8];
} torch_tensor;
// 0 with *out (n_out tensors, free with torch_tensors_free), or -1 naming the file and offset.
int decode_torch_pickle(const uint8_t *buf, size_t len, const char *name, torch_tensor **out, int *n_out);
void torch_tensors_free(torch_tensor *t, int n);
