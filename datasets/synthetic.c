// synthetic: the generator behind `igpt prepare synthetic` (see synthetic.h). Each image: a
// background (flat or a two-colour gradient), one shape drawn with 4x4 supersampled coverage in
// a colour far from the background, then Gaussian pixel noise.
#include "datasets/synthetic.h"
#include "base/util.h"
#include <math.h>

const char *const synthetic_class_names[SYNTH_CLASSES] = {
    "disc", "ring", "square", "frame", "triangle", "cross",
    "horizontal_bars", "vertical_bars", "diagonal_stripes", "checker"};

typedef struct {
  int cls;
  double cx, cy, r;        // centre and half-size in pixels
  double cos_t, sin_t;     // rotation
  double thick;            // ring/frame inner edge as a fraction of r
  double period, phase;    // stripes and checker, pixels
} shape;

// Is the point (px, py) (pixel units) inside the shape?
static int inside(const shape *s, double px, double py) {
  double dx = px - s->cx, dy = py - s->cy;
  double u = (s->cos_t * dx + s->sin_t * dy) / s->r, v = (-s->sin_t * dx + s->cos_t * dy) / s->r;
  double rad = sqrt(u * u + v * v), box = fmax(fabs(u), fabs(v));
  switch (s->cls) {
    case 0: return rad <= 1;
    case 1: return rad <= 1 && rad >= s->thick;
    case 2: return box <= 0.85;
    case 3: return box <= 0.85 && box >= 0.85 * s->thick;
    case 4: return v <= 0.8 && v >= -0.9 && fabs(u) <= 0.95 * (v + 0.9) / 1.7;
    case 5: return (fabs(u) <= 0.25 && fabs(v) <= 0.95) || (fabs(v) <= 0.25 && fabs(u) <= 0.95);
    default: break;
  }
  if (box > 1) return 0;  // the textures fill a (rotated) square
  double a = u * s->r + s->phase, b = v * s->r + s->phase, p = s->period;
  switch (s->cls) {
    case 6: return fmod(b + 100 * p, p) < p / 2;
    case 7: return fmod(a + 100 * p, p) < p / 2;
    case 8: return fmod((a + b) / M_SQRT2 + 100 * p, p) < p / 2;
    default: return (((int)floor((a + 100 * p) / p) + (int)floor((b + 100 * p) / p)) & 1) == 0;
  }
}

static void random_colour(rng_t *r, double c[3]) {
  for (int k = 0; k < 3; k++) c[k] = rng_below(r, 256);
}

static double colour_dist(const double a[3], const double b[3]) {
  return sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

static void draw_one(uint8_t *img, int S, int cls, rng_t *r) {
  double scale = S / 32.0;
  shape s = {.cls = cls};
  s.r = (6 + 7 * rng_uniform(r)) * scale;  // half-size 6..13 px at 32x32
  double margin = s.r * 0.9;
  s.cx = margin + (S - 2 * margin) * rng_uniform(r);
  s.cy = margin + (S - 2 * margin) * rng_uniform(r);
  // rotation: free for shapes, small for textures so bars stay horizontal/vertical/diagonal
  double theta = (cls <= 5 ? 0.6 : 0.25) * (2 * rng_uniform(r) - 1);
  s.cos_t = cos(theta);
  s.sin_t = sin(theta);
  s.thick = 0.45 + 0.25 * rng_uniform(r);
  s.period = (3.5 + 2.5 * rng_uniform(r)) * scale;
  s.phase = s.period * rng_uniform(r);
  double bg0[3], bg1[3], fg[3];
  random_colour(r, bg0);
  int gradient = rng_below(r, 2);
  if (gradient) random_colour(r, bg1);
  else for (int k = 0; k < 3; k++) bg1[k] = bg0[k];
  double gdir = 2 * M_PI * rng_uniform(r), gx = cos(gdir), gy = sin(gdir);
  do random_colour(r, fg);  // contrast against both ends of the background
  while (colour_dist(fg, bg0) < 100 || colour_dist(fg, bg1) < 100);
  double noise = 4 + 8 * rng_uniform(r);
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      int hits = 0;
      for (int sy = 0; sy < 4; sy++)
        for (int sx = 0; sx < 4; sx++) hits += inside(&s, x + (sx + 0.5) / 4, y + (sy + 0.5) / 4);
      double a = hits / 16.0;
      double t = 0.5 + 0.5 * ((x - S / 2.0) * gx + (y - S / 2.0) * gy) / (S / 2.0);
      t = fmin(1, fmax(0, t));
      for (int k = 0; k < 3; k++) {
        double bg = bg0[k] * (1 - t) + bg1[k] * t;
        double v = bg * (1 - a) + fg[k] * a + noise * rng_normal(r);
        img[(y * S + x) * 3 + k] = (uint8_t)fmin(255, fmax(0, floor(v + 0.5)));
      }
    }
}

void synthetic_generate(image_set *out, int64_t n, int size, uint64_t seed, uint64_t stream) {
  image_set_alloc(out, n, size, size, SYNTH_CLASSES);
  size_t px = (size_t)size * size * 3;
  #pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < n; i++) {
    rng_t r;  // one stream per image: the bytes do not depend on the thread count
    rng_seed_stream(&r, seed, (stream << 40) ^ (uint64_t)i);
    int cls = (int)(i % SYNTH_CLASSES);
    out->labels[i] = cls;
    draw_one(out->pixels + (size_t)i * px, size, cls, &r);
  }
}
