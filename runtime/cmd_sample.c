// igpt sample: unconditional samples and half-image completions from an autoregressive model,
// written as a PNG grid (the paper's figure layout: original, given half, completions).
#include "cli.h"
#include "model.h"
#include "pngio.h"
#include "safetensors.h"
#include "sample.h"
#include "util.h"
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out) {
  fprintf(out,
    "usage: igpt sample --model M --palette P --out GRID.png [--n N] [--temperature t] [--top-k k]\n"
    "                   [--seed s] [--complete IMAGES --rows r] [--no-cache] [--save-tokens F] [--json]\n\n"
    "Samples images from an autoregressive model with a KV cache and writes them as a PNG grid.\n"
    "Unconditional: N samples from sos. With --complete: the first r images of IMAGES (an images\n"
    "file, U8 [N,H,W,3], quantised with the palette, or a tokens file, U16 [N,T]) keep their top\n"
    "half and N completions of the bottom half are sampled; each grid row shows the original,\n"
    "the given half and the completions.\n\n"
    "  --model M         native model file (autoregressive; n_ctx = side^2)\n"
    "  --palette P       palette file: clusters F32 [K,3] in [-1,1], K = the model's n_vocab\n"
    "  --out GRID.png    the grid (written atomically)\n"
    "  --n N             samples, or completions per image (default 8)\n"
    "  --temperature t   softmax temperature (default 1.0)\n"
    "  --top-k k         sample among the k most likely tokens (default 0: all)\n"
    "  --seed s          random seed (default 0); the same seed gives the same samples\n"
    "  --complete F      images or tokens file to complete\n"
    "  --rows r          images to complete (default 4)\n"
    "  --no-cache        recompute the whole prefix at every step (slow; for comparison)\n"
    "  --save-tokens F   also write the sampled tokens (tokens U16 [B,T]) to F\n"
    "  --json            print {out, sequences, positions, given, seconds, tokens_per_s, kv_cache}\n");
}

typedef struct { double start, last; int tty; } progress_t;

static void progress(int done, int total, void *ctx) {
  progress_t *p = ctx;
  double now = now_seconds(), el = now - p->start;
  if (done < total && now - p->last < (p->tty ? 0.2 : 5.0)) return;
  p->last = now;
  double rate = done / (el > 0 ? el : 1e-9);
  fprintf(stderr, "%ssample: position %d/%d, %.1f positions/s, ETA %.0f s%s", p->tty ? "\r" : "", done,
          total, rate, (total - done) / rate, p->tty && done < total ? "" : "\n");
}

// Palette entry k as 8-bit RGB: rint(127.5 * (c + 1)) (REFERENCE.md 2).
static void dequantise(const uint16_t *tok, int n, const float *clusters, uint8_t *rgb) {
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < 3; ch++) {
      double v = rint(127.5 * (clusters[tok[i] * 3 + ch] + 1.0));
      rgb[i * 3 + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

// Nearest centre by squared distance in [-1,1] (x/127.5 - 1), first index on ties.
static void quantise(const uint8_t *rgb, int n, const float *clusters, int K, uint16_t *tok) {
  for (int i = 0; i < n; i++) {
    float x[3] = {rgb[i * 3] / 127.5f - 1, rgb[i * 3 + 1] / 127.5f - 1, rgb[i * 3 + 2] / 127.5f - 1};
    int best = 0;
    float bd = INFINITY;
    for (int k = 0; k < K; k++) {
      float d = 0;
      for (int ch = 0; ch < 3; ch++) { float e = x[ch] - clusters[k * 3 + ch]; d += e * e; }
      if (d < bd) { bd = d; best = k; }
    }
    tok[i] = (uint16_t)best;
  }
}

int cmd_sample(int argc, char **argv) {
  static const struct option opts[] = {
    {"model", required_argument, 0, 'm'}, {"palette", required_argument, 0, 'p'},
    {"out", required_argument, 0, 'o'}, {"n", required_argument, 0, 'n'},
    {"temperature", required_argument, 0, 't'}, {"top-k", required_argument, 0, 'k'},
    {"seed", required_argument, 0, 's'}, {"complete", required_argument, 0, 'c'},
    {"rows", required_argument, 0, 'r'}, {"no-cache", no_argument, 0, 'N'},
    {"save-tokens", required_argument, 0, 'S'}, {"json", no_argument, 0, 'j'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *mpath = NULL, *ppath = NULL, *out = NULL, *complete = NULL, *save = NULL;
  long n = 8, topk = 0, seed = 0, rows = 4;
  double temp = 1.0;
  int json = 0, use_cache = 1, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "m:p:o:n:t:k:s:c:r:NS:jh", opts, NULL)) != -1) {
    int rc = 0;
    switch (c) {
      case 'm': mpath = optarg; break;
      case 'p': ppath = optarg; break;
      case 'o': out = optarg; break;
      case 'n': rc = parse_long("sample", "--n", optarg, 1, 4096, &n); break;
      case 't': rc = parse_double("sample", "--temperature", optarg, 1e-6, 100, &temp); break;
      case 'k': rc = parse_long("sample", "--top-k", optarg, 0, 65535, &topk); break;
      case 's': rc = parse_long("sample", "--seed", optarg, 0, (1L << 62), &seed); break;
      case 'c': complete = optarg; break;
      case 'r': rc = parse_long("sample", "--rows", optarg, 1, 1024, &rows); break;
      case 'N': use_cache = 0; break;
      case 'S': save = optarg; break;
      case 'j': json = 1; break;
      case 'h': usage(stdout); return 0;
      default: return usage_error("sample", "unknown option");
    }
    if (rc) return rc;
  }
  if (optind < argc) return usage_error("sample", "unexpected argument '%s'", argv[optind]);
  if (!mpath || !ppath || !out) return usage_error("sample", "--model, --palette and --out are required");

  model *m = model_load(mpath);
  if (!m) return fail("sample");
  int rc = 1;
  st_file pal = {0}, src = {0};
  uint16_t *tok = NULL, *given_tok = NULL;
  uint8_t *orig = NULL, *cell = NULL;
  pngio_grid g = {0};
  const int T = m->cfg.n_ctx, V = m->cfg.n_vocab, side = (int)lround(sqrt(T));
  if (side * side != T) { igpt_err("%s: n_ctx %d is not a square image (side^2)", mpath, T); goto done; }
  if (st_open(&pal, ppath)) goto done;
  const st_tensor *cl = st_expect(&pal, "clusters", ST_F32, 2, (int64_t[]){V, 3});
  if (!cl) { igpt_err_prefix("palette must match the model's n_vocab %d", V); goto done; }
  const float *clusters = cl->data;

  int rws = 0, B;
  if (complete) {  // the images to complete, as tokens (and their original pixels when given)
    if (st_open(&src, complete)) goto done;
    const st_tensor *im = st_get(&src, "images"), *tk = st_get(&src, "tokens");
    int64_t N;
    if (im) {
      if (!(im = st_expect(&src, "images", ST_U8, 4, (int64_t[]){-1, side, side, 3}))) goto done;
      N = im->shape[0];
    } else if (tk) {
      if (!(tk = st_expect(&src, "tokens", ST_U16, 2, (int64_t[]){-1, T}))) goto done;
      N = tk->shape[0];
    } else {
      igpt_err("%s: has neither 'images' nor 'tokens'", complete);
      goto done;
    }
    rws = (int)(rows < N ? rows : N);
    if (rws < 1) { igpt_err("%s: no images to complete", complete); goto done; }
    given_tok = xmalloc((size_t)rws * T * sizeof *given_tok);
    orig = xmalloc((size_t)rws * T * 3);
    for (int r = 0; r < rws; r++) {
      if (im) {
        memcpy(orig + (size_t)r * T * 3, (const uint8_t *)im->data + (size_t)r * T * 3, (size_t)T * 3);
        quantise(orig + (size_t)r * T * 3, T, clusters, V, given_tok + (size_t)r * T);
      } else {
        memcpy(given_tok + (size_t)r * T, (const uint16_t *)tk->data + (size_t)r * T, T * sizeof *given_tok);
        for (int i = 0; i < T; i++)
          if (given_tok[(size_t)r * T + i] >= V) {
            igpt_err("%s: tokens[%d,%d] = %u outside the palette of %d", complete, r, i, given_tok[(size_t)r * T + i], V);
            goto done;
          }
        dequantise(given_tok + (size_t)r * T, T, clusters, orig + (size_t)r * T * 3);
      }
    }
    B = rws * (int)n;
  } else {
    B = (int)n;
  }
  const int given = complete ? (side / 2) * side : 0;  // the top half, whole rows
  tok = xcalloc((size_t)B * T, sizeof *tok);
  if (complete)
    for (int b = 0; b < B; b++) memcpy(tok + (size_t)b * T, given_tok + (size_t)(b / n) * T, given * sizeof *tok);
  log_info("sample: %d sequence%s of %d positions (%d given), %s, temperature %g, top-k %ld, seed %ld",
           B, B == 1 ? "" : "s", T, given, use_cache ? "KV cache" : "no cache", temp, topk, seed);
  progress_t pr = {now_seconds(), 0, isatty(2)};
  sample_opts o = {temp, (int)topk, (uint64_t)seed, use_cache};
  if (sample_tokens(m, tok, B, T, given, &o, progress, &pr)) goto done;
  double secs = now_seconds() - pr.start;

  int scale = side >= 64 ? 1 : 64 / side, cs = side * scale;
  cell = xmalloc((size_t)T * 3);
  if (complete) {
    pngio_grid_init(&g, rws, (int)n + 2, cs, cs, 2, 255);
    for (int r = 0; r < rws; r++) {
      pngio_grid_put(&g, r, 0, orig + (size_t)r * T * 3, side, side, scale);
      dequantise(given_tok + (size_t)r * T, T, clusters, cell);
      memset(cell + (size_t)given * 3, 128, (size_t)(T - given) * 3);  // the hidden half, grey
      pngio_grid_put(&g, r, 1, cell, side, side, scale);
      for (int j = 0; j < n; j++) {
        dequantise(tok + ((size_t)r * n + j) * T, T, clusters, cell);
        pngio_grid_put(&g, r, 2 + j, cell, side, side, scale);
      }
    }
  } else {
    int cols = n < 8 ? (int)n : 8, grows = (int)((n + cols - 1) / cols);
    pngio_grid_init(&g, grows, cols, cs, cs, 2, 255);
    for (int b = 0; b < B; b++) {
      dequantise(tok + (size_t)b * T, T, clusters, cell);
      pngio_grid_put(&g, b / cols, b % cols, cell, side, side, scale);
    }
  }
  if (pngio_write(out, g.rgb, g.w, g.h)) goto done;
  if (save) {
    st_writer *w = st_writer_new();
    st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){B, T}, tok);
    int src_rc = st_writer_save(w, save);
    st_writer_free(w);
    if (src_rc) goto done;
  }
  log_info("sample: wrote %s (%dx%d), %.1f s, %.0f sampled tokens/s", out, g.w, g.h, secs,
           (double)B * (T - given) / secs);
  if (json)
    print_json(json_pack("{s:s, s:i, s:i, s:i, s:f, s:f, s:b}", "out", out, "sequences", B, "positions", T,
                         "given", given, "seconds", secs, "tokens_per_s", (double)B * (T - given) / secs,
                         "kv_cache", use_cache));
  rc = 0;
done:
  if (rc) fail("sample");
  pngio_grid_free(&g);
  free(cell); free(tok); free(given_tok); free(orig);
  if (src.map) st_close(&src);
  if (pal.map) st_close(&pal);
  model_free(m);
  return rc;
}
