// igpt sample: unconditional samples and half-image completions from an autoregressive model,
// written as a PNG grid (the paper's figure layout: original, given half, completions).
#include "cli/cli.h"
#include "engine/model.h"
#include "datasets/palette.h"
#include "reports/pngio.h"
#include "base/safetensors.h"
#include "engine/sample.h"
#include "base/util.h"
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
    "  --palette P       palette: clusters F32 [K,3] in [-1,1] or kmeans_centers.npy; K = n_vocab\n"
    "  --out GRID.png    the grid (written atomically)\n"
    "  --n N             samples, or completions per image (default 8)\n"
    "  --temperature t   softmax temperature (default 1.0)\n"
    "  --top-k k         sample among the k most likely tokens (default 0: all)\n"
    "  --seed s          random seed (default 0); the same seed gives the same samples\n"
    "  --complete F      images or tokens file to complete\n"
    "  --rows r          images to complete (default 4)\n"
    "  --no-cache        recompute the whole prefix at every step (slow; for comparison)\n"
    "  --save-tokens F   also write the sampled tokens (tokens U16 [B,T]) to F\n"
    "  --json            print {out, sequences, positions, given, seconds, tokens_per_s, kv_cache}\n"
    DEVICE_HELP);
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

int cmd_sample(int argc, char **argv) {
  static const struct option opts[] = {
    {"model", required_argument, 0, 'm'}, {"palette", required_argument, 0, 'p'},
    {"out", required_argument, 0, 'o'}, {"n", required_argument, 0, 'n'},
    {"temperature", required_argument, 0, 't'}, {"top-k", required_argument, 0, 'k'},
    {"seed", required_argument, 0, 's'}, {"complete", required_argument, 0, 'c'},
    {"rows", required_argument, 0, 'r'}, {"no-cache", no_argument, 0, 'N'},
    {"save-tokens", required_argument, 0, 'S'}, {"json", no_argument, 0, 'j'},
    {"help", no_argument, 0, 'h'}, DEVICE_OPTIONS, {0, 0, 0, 0}};
  const char *mpath = NULL, *ppath = NULL, *out = NULL, *complete = NULL, *save = NULL;
  const char *device = NULL, *precision = NULL;
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
      case OPT_DEVICE: device = optarg; break;
      case OPT_PRECISION: precision = optarg; break;
      default: return usage_error("sample", "unknown option");
    }
    if (rc) return rc;
  }
  if (optind < argc) return usage_error("sample", "unexpected argument '%s'", argv[optind]);
  if (!mpath || !ppath || !out) return usage_error("sample", "--model, --palette and --out are required");

  int dr = device_flags("sample", device, precision);
  if (dr) return dr;
  model *m = model_load(mpath);
  if (!m) return fail("sample");
  int rc = 1;
  st_file src = {0};
  float *clusters = NULL;
  uint16_t *tok = NULL, *given_tok = NULL;
  uint8_t *orig = NULL, *cell = NULL;
  pngio_grid g = {0};
  const int T = m->cfg.n_ctx, V = m->cfg.n_vocab, side = (int)lround(sqrt(T));
  if (side * side != T) { igpt_err("%s: n_ctx %d is not a square image (side^2)", mpath, T); goto done; }
  int K = 0;
  if (palette_load(ppath, &clusters, &K)) goto done;
  if (K != V) { igpt_err("%s: %d colours, the model %s has n_vocab %d", ppath, K, mpath, V); goto done; }

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
        if (palette_tokenize(clusters, V, orig + (size_t)r * T * 3, T, given_tok + (size_t)r * T)) goto done;
      } else {
        memcpy(given_tok + (size_t)r * T, (const uint16_t *)tk->data + (size_t)r * T, T * sizeof *given_tok);
        for (int i = 0; i < T; i++)
          if (given_tok[(size_t)r * T + i] >= V) {
            igpt_err("%s: tokens[%d,%d] = %u outside the palette of %d", complete, r, i, given_tok[(size_t)r * T + i], V);
            goto done;
          }
        if (palette_detokenize(clusters, V, given_tok + (size_t)r * T, T, orig + (size_t)r * T * 3)) goto done;
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
      if (palette_detokenize(clusters, V, given_tok + (size_t)r * T, T, cell)) goto done;
      memset(cell + (size_t)given * 3, 128, (size_t)(T - given) * 3);  // the hidden half, grey
      pngio_grid_put(&g, r, 1, cell, side, side, scale);
      for (int j = 0; j < n; j++) {
        if (palette_detokenize(clusters, V, tok + ((size_t)r * n + j) * T, T, cell)) goto done;
        pngio_grid_put(&g, r, 2 + j, cell, side, side, scale);
      }
    }
  } else {
    int cols = n < 8 ? (int)n : 8, grows = (int)((n + cols - 1) / cols);
    pngio_grid_init(&g, grows, cols, cs, cs, 2, 255);
    for (int b = 0; b < B; b++) {
      if (palette_detokenize(clusters, V, tok + (size_t)b * T, T, cell)) goto done;
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
  free(clusters);
  model_free(m);
  return rc;
}
