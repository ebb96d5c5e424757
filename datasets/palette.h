// palette: the 9-bit colour palette of Image GPT (REFERENCE.md section 2): k-means over RGB
// pixels mapped to [-1,1], quantisation of pixels to their nearest centre, and back.
//
// The quantisation rule, exactly: a pixel p (u8 RGB) is x = float(p/127.5 - 1) per channel; its
// token is the index k minimising d_k = (x0-c0)^2 + (x1-c1)^2 + (x2-c2)^2 evaluated in double
// from the float32 x and c, the FIRST index on ties. Everything that assigns pixels (tokenize,
// the k-means steps) uses this one rule; speed comes from a colour-cube grid that lists, for each
// cell of the 256^3 cube, the centres that can be nearest to some colour in it (a conservative
// bound), so the exact rule is evaluated only over a short candidate list.
// Dequantisation: rint(127.5*(c+1)) clamped to [0,255].
#pragma once
#include <stddef.h>
#include <stdint.h>

#define PALETTE_K 512           // the paper's palette size
#define PALETTE_MAX_K 65535     // tokens are u16

static inline float palette_pixel(uint8_t p) { return (float)(p / 127.5 - 1.0); }
uint8_t palette_unpixel(float c);  // rint(127.5*(c+1)) clamped

// Candidate lists for every cell of the colour cube (cell = colour >> shift per channel).
typedef struct {
  int K, shift, side;          // side = 256 >> shift cells per channel
  const float *centres;        // [K,3], borrowed
  int64_t *start;              // [side^3 + 1] offsets into idx/cxyz
  uint16_t *idx;               // candidate centre indices, ascending within a cell
  float *cxyz;                 // their coordinates [.,3], parallel to idx
} palette_grid;

// Builds the lists (shift <= 5) for the cells marked in `used` (side^3 bytes; NULL: all cells);
// unmarked cells get empty lists and must not be queried. An octree: each box's list is refined
// from its parent's. Parallel (OpenMP); deterministic.
void palette_grid_build(palette_grid *g, const float *centres, int K, int shift, const uint8_t *used);
void palette_grid_free(palette_grid *g);
static inline int palette_cell(const palette_grid *g, const uint8_t *rgb) {
  int s = g->shift, n = g->side;
  return ((rgb[0] >> s) * n + (rgb[1] >> s)) * n + (rgb[2] >> s);
}
// The exact rule for one pixel through the grid; *dist receives d (may be NULL).
int palette_nearest(const palette_grid *g, const uint8_t *rgb, double *dist);
// The exact rule by brute force over all K centres (the reference the grid is tested against).
int palette_nearest_brute(const float *centres, int K, const float x[3], double *dist);

// A quantiser: the grid, plus (full_lut) the token of each of the 2^24 colours (32 MiB, worth
// building from about PALETTE_LUT_MIN pixels on). NULL with an error when the centres are bad.
#define PALETTE_LUT_MIN (4u << 20)
typedef struct palette_quantizer palette_quantizer;
palette_quantizer *palette_quantizer_new(const float *centres, int K, int full_lut);
void palette_quantize(const palette_quantizer *q, const uint8_t *rgb, size_t n, uint16_t *tokens);
void palette_quantizer_free(palette_quantizer *q);
// Tokens for n pixels (u8 RGB, [n,3]); parallel (OpenMP). Returns 0 or -1 (bad centres).
int palette_tokenize(const float *centres, int K, const uint8_t *rgb, size_t n, uint16_t *tokens);
// Pixels for n tokens; tokens >= K are an error naming the position.
int palette_detokenize(const float *centres, int K, const uint16_t *tokens, size_t n, uint8_t *rgb);
// Checks centres: K in [1, PALETTE_MAX_K], every value finite. name is for messages.
int palette_check(const float *centres, int K, const char *name);

// A deterministic sample of n of the `total` pixels (selection sampling, Knuth's algorithm S:
// without replacement, in order), drawn from rng_seed_stream(seed, "palette sample").
// n >= total copies every pixel. out: [min(n,total),3].
size_t palette_sample(const uint8_t *rgb, size_t total, size_t n, uint64_t seed, uint8_t *out);

typedef struct {
  int iters_run;               // Lloyd iterations done (fewer than asked when assignments stopped changing)
  int reseeded;                // empty clusters re-seeded, over all iterations
  double inertia_init;         // sum of squared distances to the k-means++ centres
  double inertia;              // after the last update, with the exact rule
  double seconds_init, seconds_lloyd;
} kmeans_stats;

// k-means on n u8 pixels (mapped to [-1,1]): greedy k-means++ initialisation (2 + floor(ln k)
// local trials per centre, as scikit-learn's), then up to `iters` Lloyd iterations (assign by the
// exact rule, centre = mean of its pixels computed exactly from integer sums). An empty cluster
// is re-seeded with the pixel farthest from its centre (first index on ties). Results do not
// depend on the number of threads. centres: [K,3] out. log: progress on stderr when nonzero.
int kmeans_fit(const uint8_t *rgb, size_t n, int K, int iters, uint64_t seed, float *centres,
               kmeans_stats *st, int log);

// ---- files (palette_io.c) ----
// A palette from a safetensors file (`clusters` F32 [K,3]) or an .npy file ([K,3], f4 or f8,
// e.g. the official kmeans_centers.npy), told apart by their first bytes. *centres is malloc'd.
int palette_load(const char *path, float **centres, int *K);
// Writes `clusters` F32 [K,3] with metadata (key/value pairs, NULL-terminated; may be NULL).
int palette_save(const char *path, const float *centres, int K, const char *const *meta);
// n images [n,h,w,3] as a PNG grid of `cols` columns with a 2-pixel white gap, atomically.
int palette_png_grid(const char *path, const uint8_t *rgb, int n, int h, int w, int cols);
