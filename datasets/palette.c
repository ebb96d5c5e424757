// palette: k-means colour palette, exact nearest-centre quantisation through a colour-cube grid,
// dequantisation. See palette.h for the rule. Reductions are per cell in a fixed order or in
// integers, so results do not depend on the number of threads.
#include "datasets/palette.h"
#include "base/rng.h"
#include "base/util.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

// The exact rule must not change with the compiler's choice to fuse a*b+c.
#pragma GCC optimize("fp-contract=off")

static float XV[256];  // palette_pixel(p) for every byte
__attribute__((constructor)) static void init_xv(void) {
  for (int p = 0; p < 256; p++) XV[p] = palette_pixel((uint8_t)p);
}

uint8_t palette_unpixel(float c) {
  double v = rint(127.5 * ((double)c + 1.0));
  return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
}

int palette_check(const float *centres, int K, const char *name) {
  if (K < 1 || K > PALETTE_MAX_K)
    return igpt_err("%s: palette has %d centres; expected 1 to %d", name, K, PALETTE_MAX_K);
  for (int i = 0; i < 3 * K; i++)
    if (!isfinite(centres[i]))
      return igpt_err("%s: palette centre %d channel %d is not finite (%g)", name, i / 3, i % 3,
                      (double)centres[i]);
  return 0;
}

// ---- the exact rule --------------------------------------------------------------------------

static inline double sqdist(double x0, double x1, double x2, double c0, double c1, double c2) {
  double d0 = x0 - c0, d1 = x1 - c1, d2 = x2 - c2;
  return d0 * d0 + d1 * d1 + d2 * d2;
}

int palette_nearest_brute(const float *c, int K, const float x[3], double *dist) {
  double best = INFINITY;
  int bi = 0;
  for (int k = 0; k < K; k++) {
    double d = sqdist(x[0], x[1], x[2], c[3 * k], c[3 * k + 1], c[3 * k + 2]);
    if (d < best) { best = d; bi = k; }
  }
  if (dist) *dist = best;
  return bi;
}

int palette_nearest(const palette_grid *g, const uint8_t *rgb, double *dist) {
  int cell = palette_cell(g, rgb);
  double x0 = XV[rgb[0]], x1 = XV[rgb[1]], x2 = XV[rgb[2]];
  int64_t s = g->start[cell], e = g->start[cell + 1];
  double best = INFINITY;
  int64_t bj = s;
  for (int64_t j = s; j < e; j++) {
    const float *c = g->cxyz + 3 * j;
    double d = sqdist(x0, x1, x2, c[0], c[1], c[2]);
    if (d < best) { best = d; bj = j; }
  }
  if (dist) *dist = best;
  return g->idx[bj];
}

// ---- the grid --------------------------------------------------------------------------------

// Candidates of one box: every centre (from the parent's list `in`, m_in of them) whose least
// squared distance to the box can be at most the smallest greatest distance of any centre (with a
// relative slack of 1e-9, far above the few-ulp error of the double arithmetic), in ascending
// index order. So every centre that is nearest, or tied for nearest, to some colour of the box is
// listed, and the first-index rule over the list picks what it would pick over all K. A child
// box's list is a subset of its parent's (its least distances are larger, its bound smaller, and
// the centre giving the bound is itself listed), which is what makes the octree below exact.
static int box_candidates(const float *c, const uint16_t *in, int m_in, const double lo[3],
                          const double hi[3], double *mind, uint16_t *out) {
  double bound = INFINITY;
  for (int q = 0; q < m_in; q++) {
    const float *v = c + 3 * in[q];
    double mn = 0, mx = 0;
    for (int j = 0; j < 3; j++) {
      double a = lo[j] - v[j], b = v[j] - hi[j];
      double near = a > 0 ? a : b > 0 ? b : 0;
      double far = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
      mn += near * near;
      mx += far * far;
    }
    mind[q] = mn;
    if (mx < bound) bound = mx;
  }
  bound *= 1 + 1e-9;
  int m = 0;
  for (int q = 0; q < m_in; q++)
    if (mind[q] <= bound) out[m++] = in[q];
  return m;
}

// The box of colours [a << shift, (a+1) << shift) per channel, in [-1,1] values.
static void colour_box(int shift, const int a[3], double lo[3], double hi[3]) {
  for (int j = 0; j < 3; j++) {
    lo[j] = XV[a[j] << shift];
    hi[j] = XV[((a[j] + 1) << shift) - 1];
  }
}

static void cell_box(int shift, int side, int cell, double lo[3], double hi[3]) {
  int a[3] = {cell / (side * side), cell / side % side, cell % side};
  colour_box(shift, a, lo, hi);
}

#define GRID_TOP 5  // lists at shift 5 (8^3 boxes) come from all K; finer ones from their parents

typedef struct {
  const float *c;
  int K, shift, side;
  const uint8_t *used;
  uint16_t **lists;
  int *count;
  double *mind;       // scratch per level: [levels][K]
  uint16_t *buf;      // scratch per level: [levels][K]
} refine_ctx;

static void refine(refine_ctx *r, int s, const int a[3], const uint16_t *in, int m_in) {
  int lvl = GRID_TOP - s;
  uint16_t *out = r->buf + (size_t)lvl * r->K;
  double lo[3], hi[3];
  colour_box(s, a, lo, hi);
  int m = box_candidates(r->c, in, m_in, lo, hi, r->mind + (size_t)lvl * r->K, out);
  if (s == r->shift) {
    int cell = (a[0] * r->side + a[1]) * r->side + a[2];
    if (r->used && !r->used[cell]) return;
    r->lists[cell] = xmalloc(sizeof(uint16_t) * (size_t)(m + 1));
    memcpy(r->lists[cell], out, sizeof(uint16_t) * (size_t)m);
    r->count[cell] = m;
    return;
  }
  for (int ch = 0; ch < 8; ch++) {
    int b[3] = {2 * a[0] + (ch >> 2), 2 * a[1] + (ch >> 1 & 1), 2 * a[2] + (ch & 1)};
    refine(r, s - 1, b, out, m);
  }
}

void palette_grid_build(palette_grid *g, const float *centres, int K, int shift, const uint8_t *used) {
  if (shift > GRID_TOP) shift = GRID_TOP;
  memset(g, 0, sizeof *g);
  g->K = K;
  g->shift = shift;
  g->side = 256 >> shift;
  g->centres = centres;
  int ncell = g->side * g->side * g->side;
  uint16_t **lists = xcalloc((size_t)ncell, sizeof *lists);
  int *count = xcalloc((size_t)ncell, sizeof *count);
  uint16_t *all = xmalloc(sizeof(uint16_t) * (size_t)K);
  for (int k = 0; k < K; k++) all[k] = (uint16_t)k;
  const int top = 256 >> GRID_TOP, ntop = top * top * top;
#pragma omp parallel
  {
    int levels = GRID_TOP - shift + 1;
    refine_ctx r = {centres, K, shift, g->side, used, lists, count,
                    xmalloc(sizeof(double) * (size_t)K * levels),
                    xmalloc(sizeof(uint16_t) * (size_t)K * levels)};
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < ntop; t++) {
      int a[3] = {t / (top * top), t / top % top, t % top};
      refine(&r, GRID_TOP, a, all, K);
    }
    free(r.mind);
    free(r.buf);
  }
  free(all);
  g->start = xmalloc(sizeof(int64_t) * ((size_t)ncell + 1));
  int64_t total = 0;
  for (int cell = 0; cell < ncell; cell++) {
    g->start[cell] = total;
    total += count[cell];
  }
  g->start[ncell] = total;
  g->idx = xmalloc(sizeof(uint16_t) * (size_t)(total + 1));
  g->cxyz = xmalloc(sizeof(float) * 3 * (size_t)(total + 1));
#pragma omp parallel for schedule(dynamic, 256)
  for (int cell = 0; cell < ncell; cell++) {
    int64_t s = g->start[cell];
    for (int j = 0; j < count[cell]; j++) {
      int k = lists[cell][j];
      g->idx[s + j] = (uint16_t)k;
      memcpy(g->cxyz + 3 * (s + j), centres + 3 * k, 3 * sizeof(float));
    }
    free(lists[cell]);
  }
  free(lists);
  free(count);
}

void palette_grid_free(palette_grid *g) {
  free(g->start);
  free(g->idx);
  free(g->cxyz);
  memset(g, 0, sizeof *g);
}

// ---- tokens ----------------------------------------------------------------------------------

struct palette_quantizer {
  palette_grid g;
  uint16_t *lut;  // [2^24] token of every colour, or NULL
};

palette_quantizer *palette_quantizer_new(const float *centres, int K, int full_lut) {
  if (palette_check(centres, K, "palette") != 0) return NULL;
  palette_quantizer *q = xcalloc(1, sizeof *q);
  palette_grid_build(&q->g, centres, K, 3, NULL);
  if (full_lut) {
    q->lut = xmalloc(sizeof(uint16_t) << 24);
#pragma omp parallel for schedule(dynamic, 16)
    for (int rg = 0; rg < 65536; rg++)
      for (int b = 0; b < 256; b++) {
        uint8_t px[3] = {(uint8_t)(rg >> 8), (uint8_t)rg, (uint8_t)b};
        q->lut[(size_t)rg << 8 | (size_t)b] = (uint16_t)palette_nearest(&q->g, px, NULL);
      }
  }
  return q;
}

void palette_quantize(const palette_quantizer *q, const uint8_t *rgb, size_t n, uint16_t *tokens) {
  if (q->lut) {
#pragma omp parallel for schedule(static, 65536) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
      const uint8_t *p = rgb + 3 * i;
      tokens[i] = q->lut[(size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2]];
    }
    return;
  }
#pragma omp parallel for schedule(static, 4096) if (n > 65536)
  for (size_t i = 0; i < n; i++) tokens[i] = (uint16_t)palette_nearest(&q->g, rgb + 3 * i, NULL);
}

void palette_quantizer_free(palette_quantizer *q) {
  if (!q) return;
  palette_grid_free(&q->g);
  free(q->lut);
  free(q);
}

int palette_tokenize(const float *centres, int K, const uint8_t *rgb, size_t n, uint16_t *tokens) {
  if ((double)n * K < (double)(1 << 22)) {  // too few pixels to pay for a grid: the rule directly
    if (palette_check(centres, K, "palette") != 0) return -1;
    for (size_t i = 0; i < n; i++) {
      float x[3] = {XV[rgb[3 * i]], XV[rgb[3 * i + 1]], XV[rgb[3 * i + 2]]};
      tokens[i] = (uint16_t)palette_nearest_brute(centres, K, x, NULL);
    }
    return 0;
  }
  palette_quantizer *q = palette_quantizer_new(centres, K, n >= PALETTE_LUT_MIN);
  if (!q) return -1;
  palette_quantize(q, rgb, n, tokens);
  palette_quantizer_free(q);
  return 0;
}

int palette_detokenize(const float *centres, int K, const uint16_t *tokens, size_t n, uint8_t *rgb) {
  uint8_t *lut = xmalloc(3 * (size_t)K);
  for (int i = 0; i < 3 * K; i++) lut[i] = palette_unpixel(centres[i]);
  for (size_t i = 0; i < n; i++) {
    if (tokens[i] >= K) {
      free(lut);
      return igpt_err("token %u at position %zu is outside the palette of %d colours", tokens[i], i, K);
    }
    memcpy(rgb + 3 * i, lut + 3 * tokens[i], 3);
  }
  free(lut);
  return 0;
}

// ---- sampling --------------------------------------------------------------------------------

size_t palette_sample(const uint8_t *rgb, size_t total, size_t n, uint64_t seed, uint8_t *out) {
  if (n >= total) {
    memcpy(out, rgb, 3 * total);
    return total;
  }
  rng_t r;
  rng_seed_stream(&r, seed, 0x70616c5f73616d70ULL);  // "pal_samp"
  size_t got = 0;
  for (size_t t = 0; t < total && got < n; t++)
    if ((double)(total - t) * rng_uniform(&r) < (double)(n - got)) {  // Knuth's algorithm S
      memcpy(out + 3 * got, rgb + 3 * t, 3);
      got++;
    }
  return got;
}

// ---- k-means ---------------------------------------------------------------------------------

#define KM_SHIFT 3  // 32^3 cells of 8^3 colours

typedef struct {
  size_t n;
  int shift, side, ncell;
  uint8_t *rgb;       // [n,3] pixels sorted by cell (stable)
  float *x0, *x1, *x2;  // their [-1,1] values
  int64_t *cstart;    // [ncell+1]
  uint8_t *used;      // [ncell] cell holds pixels
  int *cells;         // the non-empty cells, ascending
  float *box;         // [6][ncells_used]: lo x,y,z then hi x,y,z of each non-empty cell
  int ncells_used;
} km_data;

static void km_data_init(km_data *D, const uint8_t *rgb, size_t n) {
  D->n = n;
  D->shift = KM_SHIFT;
  D->side = 256 >> KM_SHIFT;
  D->ncell = D->side * D->side * D->side;
  D->cstart = xcalloc((size_t)D->ncell + 1, sizeof(int64_t));
  D->used = xcalloc((size_t)D->ncell, 1);
  int *cellof = xmalloc(sizeof(int) * (n ? n : 1));
  palette_grid tmp = {.shift = D->shift, .side = D->side};
  for (size_t i = 0; i < n; i++) {
    cellof[i] = palette_cell(&tmp, rgb + 3 * i);
    D->cstart[cellof[i] + 1]++;
  }
  for (int c = 0; c < D->ncell; c++) D->cstart[c + 1] += D->cstart[c];
  int64_t *fill = xmalloc(sizeof(int64_t) * (size_t)D->ncell);
  memcpy(fill, D->cstart, sizeof(int64_t) * (size_t)D->ncell);
  D->rgb = xmalloc(3 * n + 1);
  for (size_t i = 0; i < n; i++) memcpy(D->rgb + 3 * fill[cellof[i]]++, rgb + 3 * i, 3);
  D->x0 = xmalloc(sizeof(float) * (n + 1));
  D->x1 = xmalloc(sizeof(float) * (n + 1));
  D->x2 = xmalloc(sizeof(float) * (n + 1));
  for (size_t i = 0; i < n; i++) {
    D->x0[i] = XV[D->rgb[3 * i]];
    D->x1[i] = XV[D->rgb[3 * i + 1]];
    D->x2[i] = XV[D->rgb[3 * i + 2]];
  }
  D->cells = xmalloc(sizeof(int) * (size_t)D->ncell);
  D->ncells_used = 0;
  for (int c = 0; c < D->ncell; c++)
    if (D->cstart[c + 1] > D->cstart[c]) {
      D->used[c] = 1;
      D->cells[D->ncells_used++] = c;
    }
  int nu = D->ncells_used;
  D->box = xmalloc(sizeof(float) * 6 * (size_t)(nu + 1));
  for (int u = 0; u < nu; u++) {
    double lo[3], hi[3];
    cell_box(D->shift, D->side, D->cells[u], lo, hi);
    for (int j = 0; j < 3; j++) {
      D->box[(size_t)j * nu + u] = (float)lo[j];
      D->box[(size_t)(3 + j) * nu + u] = (float)hi[j];
    }
  }
  free(fill);
  free(cellof);
}

static void km_data_free(km_data *D) {
  free(D->rgb); free(D->x0); free(D->x1); free(D->x2);
  free(D->cstart); free(D->used); free(D->cells); free(D->box);
}

// Squared distance in float for the initialisation (its own rule; deterministic, not the exact one).
static inline float fdist(const km_data *D, size_t i, const float c[3]) {
  float a = D->x0[i] - c[0], b = D->x1[i] - c[1], e = D->x2[i] - c[2];
  return a * a + b * b + e * e;
}

// Greedy k-means++ (Arthur and Vassilvitskii; scikit-learn's variant with local trials).
// d[i]: squared distance (float) of pixel i to its nearest chosen centre. A candidate can only
// lower d in a cell whose box comes nearer to it than the cell's largest d, so each candidate
// visits only those cells (found by one vectorised pass over the boxes). Sums are per cell and
// combined in cell order, so the result does not depend on the number of threads.
static double kmeanspp(const km_data *D, int K, rng_t *r, float *centres) {
  size_t n = D->n;
  int nu = D->ncells_used;
  int L = 2 + (int)floor(log((double)K));
  if (L > 64) L = 64;
  float *d = xmalloc(sizeof(float) * n);
  double *csum = xmalloc(sizeof(double) * (size_t)nu);
  double *prefix = xmalloc(sizeof(double) * ((size_t)nu + 1));
  float *cmax = xmalloc(sizeof(float) * (size_t)nu);
  float *bm = xmalloc(sizeof(float) * (size_t)nu);                  // box distances, one candidate
  int *visit = xmalloc(sizeof(int) * (size_t)nu * (size_t)L);       // cells each candidate visits
  double *vsum = xmalloc(sizeof(double) * (size_t)nu * (size_t)L);  // their new sums
  int nvisit[64];
  float cand[64][3];
  const float *lox = D->box, *loy = lox + nu, *loz = loy + nu, *hix = loz + nu, *hiy = hix + nu,
              *hiz = hiy + nu;
  size_t first = rng_below(r, (uint32_t)n);
  float c0[3] = {D->x0[first], D->x1[first], D->x2[first]};
  memcpy(centres, c0, sizeof c0);
#pragma omp parallel for schedule(dynamic, 16)
  for (int u = 0; u < nu; u++) {
    int cell = D->cells[u];
    double s = 0;
    float m = 0;
    for (int64_t i = D->cstart[cell]; i < D->cstart[cell + 1]; i++) {
      d[i] = fdist(D, (size_t)i, c0);
      s += d[i];
      if (d[i] > m) m = d[i];
    }
    csum[u] = s;
    cmax[u] = m;
  }
  double total = 0;
  for (int k = 1; k < K; k++) {
    prefix[0] = 0;
    for (int u = 0; u < nu; u++) prefix[u + 1] = prefix[u] + csum[u];
    total = prefix[nu];
    for (int l = 0; l < L; l++) {
      // a pixel drawn with probability proportional to d: its cell by bisection, then a scan
      double target = rng_uniform(r) * total;
      int lo = 0, hi = nu - 1;
      while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (prefix[mid] <= target) lo = mid; else hi = mid - 1;
      }
      int cell = D->cells[lo];
      double acc = prefix[lo];
      int64_t pick = -1;
      for (int64_t i = D->cstart[cell]; i < D->cstart[cell + 1]; i++) {
        if (d[i] > 0) pick = i;
        acc += d[i];
        if (acc > target && pick >= 0) break;
      }
      if (pick < 0) pick = D->cstart[cell];  // every distance is zero: K exceeds the colours
      cand[l][0] = D->x0[pick];
      cand[l][1] = D->x1[pick];
      cand[l][2] = D->x2[pick];
      // the cells it can improve (least box distance, shrunk by a margin, below the cell's max d)
      const float c[3] = {cand[l][0], cand[l][1], cand[l][2]};
      for (int u = 0; u < nu; u++) {
        float a0 = lox[u] - c[0], b0 = c[0] - hix[u];
        float a1 = loy[u] - c[1], b1 = c[1] - hiy[u];
        float a2 = loz[u] - c[2], b2 = c[2] - hiz[u];
        a0 = a0 > b0 ? a0 : b0;
        a1 = a1 > b1 ? a1 : b1;
        a2 = a2 > b2 ? a2 : b2;
        a0 = a0 > 0 ? a0 : 0;
        a1 = a1 > 0 ? a1 : 0;
        a2 = a2 > 0 ? a2 : 0;
        bm[u] = (a0 * a0 + a1 * a1 + a2 * a2) * (1 - 1e-5f) - cmax[u];
      }
      int m = 0;
      int *v = visit + (size_t)l * nu;
      for (int u = 0; u < nu; u++)
        if (bm[u] < 0) v[m++] = u;
      nvisit[l] = m;
    }
    // each candidate's new sums over the cells it visits, as one flat parallel loop (few
    // parallel regions: on a busy machine each barrier can cost a time slice)
    int off[65];
    off[0] = 0;
    int64_t work = 0;
    for (int l = 0; l < L; l++) {
      off[l + 1] = off[l] + nvisit[l];
      for (int q = 0; q < nvisit[l]; q++) {
        int cell = D->cells[visit[(size_t)l * nu + q]];
        work += D->cstart[cell + 1] - D->cstart[cell];
      }
    }
#pragma omp parallel for schedule(dynamic, 8) if (work > 100000)
    for (int t = 0; t < off[L]; t++) {
      int l = 0;
      while (t >= off[l + 1]) l++;
      int q = t - off[l];
      int cell = D->cells[visit[(size_t)l * nu + q]];
      const float *c = cand[l];
      double s = 0;
      for (int64_t i = D->cstart[cell]; i < D->cstart[cell + 1]; i++) {
        float dt = fdist(D, (size_t)i, c);
        s += dt < d[i] ? dt : d[i];
      }
      vsum[(size_t)l * nu + q] = s;
    }
    int best = 0;
    double bestpot = INFINITY;
    for (int l = 0; l < L; l++) {
      double drop = 0;
      for (int q = 0; q < nvisit[l]; q++) drop += csum[visit[(size_t)l * nu + q]] - vsum[(size_t)l * nu + q];
      double pot = total - drop;
      if (pot < bestpot) { bestpot = pot; best = l; }
    }
    memcpy(centres + 3 * k, cand[best], sizeof cand[best]);
    const int *v = visit + (size_t)best * nu;
#pragma omp parallel for schedule(dynamic, 8) if (work > 100000 * L)
    for (int q = 0; q < nvisit[best]; q++) {
      int u = v[q], cell = D->cells[u];
      float m = 0;
      for (int64_t i = D->cstart[cell]; i < D->cstart[cell + 1]; i++) {
        float t = fdist(D, (size_t)i, cand[best]);
        if (t < d[i]) d[i] = t;
        if (d[i] > m) m = d[i];
      }
      csum[u] = vsum[(size_t)best * nu + q];
      cmax[u] = m;
    }
  }
  total = 0;
  for (int u = 0; u < nu; u++) total += csum[u];
  free(d); free(csum); free(prefix); free(cmax); free(bm); free(visit); free(vsum);
  return total;
}

// One assignment pass with the exact rule: labels, distances, per-cell inertia; returns how many
// labels changed.
static size_t km_assign(const km_data *D, const float *centres, int K, int32_t *label, double *dist,
                        double *cinertia) {
  palette_grid g;
  palette_grid_build(&g, centres, K, D->shift, D->used);
  size_t changed = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : changed)
  for (int u = 0; u < D->ncells_used; u++) {
    int cell = D->cells[u];
    double s = 0;
    for (int64_t i = D->cstart[cell]; i < D->cstart[cell + 1]; i++) {
      int k = palette_nearest(&g, D->rgb + 3 * i, &dist[i]);
      if (k != label[i]) changed++;
      label[i] = k;
      s += dist[i];
    }
    cinertia[u] = s;
  }
  palette_grid_free(&g);
  return changed;
}

// Centres as exact means of their pixels (integer sums); empty clusters re-seeded. Returns the
// number re-seeded.
static int km_update(const km_data *D, int K, const int32_t *label, double *dist, float *centres) {
  int nt = omp_get_max_threads();
  int64_t *acc = xcalloc((size_t)nt * (size_t)K * 4, sizeof(int64_t));
#pragma omp parallel
  {
    int64_t *a = acc + (size_t)omp_get_thread_num() * (size_t)K * 4;
#pragma omp for schedule(static)
    for (size_t i = 0; i < D->n; i++) {
      int64_t *s = a + 4 * (size_t)label[i];
      s[0] += D->rgb[3 * i];
      s[1] += D->rgb[3 * i + 1];
      s[2] += D->rgb[3 * i + 2];
      s[3]++;
    }
  }
  for (int t = 1; t < nt; t++)
    for (size_t j = 0; j < (size_t)K * 4; j++) acc[j] += acc[(size_t)t * K * 4 + j];
  int reseeded = 0;
  for (int k = 0; k < K; k++) {
    if (acc[4 * k + 3] > 0) continue;
    // the farthest pixel (first on ties) whose cluster keeps at least one other pixel
    double far = -1;
    size_t fi = 0;
    for (size_t i = 0; i < D->n; i++)
      if (dist[i] > far && acc[4 * (size_t)label[i] + 3] > 1) { far = dist[i]; fi = i; }
    if (far < 0) continue;  // fewer distinct pixels than centres: the centre stays where it is
    int64_t *old = acc + 4 * (size_t)label[fi];
    for (int j = 0; j < 3; j++) {
      old[j] -= D->rgb[3 * fi + j];
      acc[4 * k + j] = D->rgb[3 * fi + j];
    }
    old[3]--;
    acc[4 * k + 3] = 1;
    dist[fi] = -1;  // taken
    reseeded++;
  }
  for (int k = 0; k < K; k++) {
    int64_t cnt = acc[4 * k + 3];
    if (cnt == 0) continue;
    for (int j = 0; j < 3; j++)
      centres[3 * k + j] = (float)((double)acc[4 * k + j] / (double)cnt / 127.5 - 1.0);
  }
  free(acc);
  return reseeded;
}

int kmeans_fit(const uint8_t *rgb, size_t n, int K, int iters, uint64_t seed, float *centres,
               kmeans_stats *st, int log) {
  memset(st, 0, sizeof *st);
  if (K < 1 || K > PALETTE_MAX_K) return igpt_err("k-means: k = %d is outside [1, %d]", K, PALETTE_MAX_K);
  if (n == 0) return igpt_err("k-means: no pixels");
  if (n > UINT32_MAX) return igpt_err("k-means: %zu pixels is more than 2^32-1; sample fewer", n);
  double t0 = now_seconds();
  km_data D;
  km_data_init(&D, rgb, n);
  rng_t r;
  rng_seed_stream(&r, seed, 0x6b6d65616e73ULL);  // "kmeans"
  st->inertia_init = kmeanspp(&D, K, &r, centres);
  st->seconds_init = now_seconds() - t0;
  if (log) log_info("k-means++: %d centres from %zu pixels in %.2f s (potential %.6g)", K, n,
                    st->seconds_init, st->inertia_init);
  int32_t *label = xmalloc(sizeof(int32_t) * n);
  for (size_t i = 0; i < n; i++) label[i] = -1;
  double *dist = xmalloc(sizeof(double) * n);
  double *cin = xmalloc(sizeof(double) * (size_t)D.ncells_used);
  double t1 = now_seconds();
  for (int it = 0; it < iters; it++) {
    size_t changed = km_assign(&D, centres, K, label, dist, cin);
    if (it > 0 && changed == 0) break;  // a fixed point: further iterations change nothing
    st->reseeded += km_update(&D, K, label, dist, centres);
    st->iters_run = it + 1;
    if (log) {
      double inertia = 0;
      for (int u = 0; u < D.ncells_used; u++) inertia += cin[u];
      double el = now_seconds() - t1;
      log_info("k-means: iteration %d/%d, inertia %.6g, %zu labels changed, %.2f s/it, ETA %.0f s",
               it + 1, iters, inertia, changed, el / (it + 1), el / (it + 1) * (iters - it - 1));
    }
  }
  km_assign(&D, centres, K, label, dist, cin);
  st->inertia = 0;
  for (int u = 0; u < D.ncells_used; u++) st->inertia += cin[u];
  st->seconds_lloyd = now_seconds() - t1;
  free(label); free(dist); free(cin);
  km_data_free(&D);
  return 0;
}
