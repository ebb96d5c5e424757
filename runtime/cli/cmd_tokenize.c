// igpt tokenize / igpt detokenize: images to palette tokens (raster order) and back.
#include "cli/cli.h"
#include "datasets/palette.h"
#include "base/safetensors.h"
#include "base/util.h"
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Progress on stderr: a carriage-return line on a terminal, a plain line every ~10% otherwise.
static void progress(const char *verb, int64_t done, int64_t total, double t0, int *last_decile) {
  if (igpt_log_level < 1) return;
  double el = now_seconds() - t0, rate = el > 0 ? done / el : 0;
  double eta = rate > 0 ? (total - done) / rate : 0;
  if (isatty(2)) {
    fprintf(stderr, "\r%s: %lld/%lld images, %.0f images/s, ETA %.0f s   ", verb, (long long)done,
            (long long)total, rate, eta);
    if (done == total) fputc('\n', stderr);
  } else {
    int dec = total ? (int)(10 * done / total) : 10;
    if (dec != *last_decile) {
      *last_decile = dec;
      fprintf(stderr, "%s: %lld/%lld images, %.0f images/s, ETA %.0f s\n", verb, (long long)done,
              (long long)total, rate, eta);
    }
  }
}

static void tokenize_usage(FILE *out) {
  fprintf(out,
          "usage: igpt tokenize --palette PALETTE --images IMAGES --out TOKENS [--json] [--quiet]\n\n"
          "Each pixel x/127.5-1 becomes the index of its nearest palette centre by squared distance,\n"
          "the first index on ties (exactly; see datasets/palette.h), in raster order.\n"
          "PALETTE: safetensors `clusters` F32 [K,3] or an .npy [K,3] (kmeans_centers.npy).\n"
          "IMAGES: `images` U8 [N,H,W,3] (+ `labels` I32 [N]). TOKENS: `tokens` U16 [N,H*W]\n"
          "(+ `labels`), metadata height, width, k.\n");
}

int cmd_tokenize(int argc, char **argv) {
  static const struct option opts[] = {
      {"palette", required_argument, 0, 'p'}, {"images", required_argument, 0, 'i'},
      {"out", required_argument, 0, 'o'},     {"json", no_argument, 0, 'j'},
      {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *pal = NULL, *images = NULL, *out = NULL;
  int json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'p': pal = optarg; break;
      case 'i': images = optarg; break;
      case 'o': out = optarg; break;
      case 'j': json = 1; break;
      case 'q': igpt_log_level = 0; break;
      case 'h': tokenize_usage(stdout); return 0;
      default: return usage_error("tokenize", "unknown option");
    }
  }
  if (optind < argc) return usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
  if (!pal || !images || !out) return usage_error("tokenize", "--palette, --images and --out are required");
  float *centres;
  int K;
  if (palette_load(pal, &centres, &K) != 0) return fail("tokenize");
  st_file f;
  if (st_open(&f, images) != 0) { free(centres); return fail("tokenize"); }
  const st_tensor *t = st_expect(&f, "images", ST_U8, 4, (int64_t[]){-1, -1, -1, 3});
  const st_tensor *lab = st_get(&f, "labels");
  if (t && lab && !st_expect(&f, "labels", ST_I32, 1, (int64_t[]){t->shape[0]})) t = NULL;
  if (!t) { st_close(&f); free(centres); return fail("tokenize"); }
  int64_t N = t->shape[0], H = t->shape[1], W = t->shape[2], T = H * W;
  double t0 = now_seconds();
  palette_quantizer *q = palette_quantizer_new(centres, K, (size_t)(N * T) >= PALETTE_LUT_MIN);
  if (!q) { st_close(&f); free(centres); return fail("tokenize"); }
  double t_build = now_seconds() - t0;
  uint16_t *tokens = xmalloc(sizeof(uint16_t) * (size_t)(N * T + 1));
  const uint8_t *px = t->data;
  int64_t chunk = 4096 * 1024 / (T ? T : 1) + 1;
  int dec = -1;
  for (int64_t i = 0; i < N; i += chunk) {
    int64_t m = N - i < chunk ? N - i : chunk;
    palette_quantize(q, px + (size_t)(i * T) * 3, (size_t)(m * T), tokens + (size_t)(i * T));
    progress("tokenize", i + m, N, t0, &dec);
  }
  palette_quantizer_free(q);
  double secs = now_seconds() - t0;
  char hb[24], wb[24], kb[16];
  snprintf(hb, sizeof hb, "%lld", (long long)H);
  snprintf(wb, sizeof wb, "%lld", (long long)W);
  snprintf(kb, sizeof kb, "%d", K);
  st_writer *w = st_writer_new();
  st_writer_add(w, "tokens", ST_U16, 2, (int64_t[]){N, T}, tokens);
  if (lab) st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){N}, lab->data);
  st_writer_meta(w, "height", hb);
  st_writer_meta(w, "width", wb);
  st_writer_meta(w, "k", kb);
  st_writer_meta(w, "palette", pal);
  char *out_dir = xstrdup(out);  // a fresh --out folder is created
  int rc = mkdir_p(dirname(out_dir));
  free(out_dir);
  if (rc == 0) rc = st_writer_save(w, out);
  st_writer_free(w);
  st_close(&f);
  free(tokens);
  free(centres);
  if (rc != 0) return fail("tokenize");
  log_info("tokenize: %lld images of %lldx%lld, %d colours, in %.2f s (grid%s %.2f s) -> %s",
           (long long)N, (long long)H, (long long)W, K, secs,
           (size_t)(N * T) >= PALETTE_LUT_MIN ? " and colour table" : "", t_build, out);
  if (json)
    print_json(json_pack("{s:s,s:I,s:I,s:i,s:f}", "out", out, "images", (json_int_t)N, "tokens_per_image",
                         (json_int_t)T, "k", K, "seconds", secs));
  return 0;
}

static void detokenize_usage(FILE *out) {
  fprintf(out,
          "usage: igpt detokenize --palette PALETTE --tokens TOKENS [--out IMAGES]\n"
          "                       [--png GRID.png [--n 64]] [--json] [--quiet]\n\n"
          "Tokens back to pixels: rint(127.5*(c+1)) clamped to [0,255]. Image size from the tokens\n"
          "file's height/width metadata, else square. --png writes the first --n images as a grid.\n");
}

int cmd_detokenize(int argc, char **argv) {
  static const struct option opts[] = {
      {"palette", required_argument, 0, 'p'}, {"tokens", required_argument, 0, 't'},
      {"out", required_argument, 0, 'o'},     {"png", required_argument, 0, 'g'},
      {"n", required_argument, 0, 'n'},       {"json", no_argument, 0, 'j'},
      {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *pal = NULL, *tokpath = NULL, *out = NULL, *png = NULL;
  long ngrid = 64;
  int json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'p': pal = optarg; break;
      case 't': tokpath = optarg; break;
      case 'o': out = optarg; break;
      case 'g': png = optarg; break;
      case 'n': if (parse_long("detokenize", "--n", optarg, 1, 1 << 20, &ngrid)) return EXIT_USAGE; break;
      case 'j': json = 1; break;
      case 'q': igpt_log_level = 0; break;
      case 'h': detokenize_usage(stdout); return 0;
      default: return usage_error("detokenize", "unknown option");
    }
  }
  if (optind < argc) return usage_error("detokenize", "unexpected argument '%s'", argv[optind]);
  if (!pal || !tokpath) return usage_error("detokenize", "--palette and --tokens are required");
  if (!out && !png) return usage_error("detokenize", "give --out, --png or both");
  float *centres;
  int K;
  if (palette_load(pal, &centres, &K) != 0) return fail("detokenize");
  st_file f;
  if (st_open(&f, tokpath) != 0) { free(centres); return fail("detokenize"); }
  const st_tensor *t = st_expect(&f, "tokens", ST_U16, 2, NULL);
  const st_tensor *lab = st_get(&f, "labels");
  if (t && lab && !st_expect(&f, "labels", ST_I32, 1, (int64_t[]){t->shape[0]})) t = NULL;
  if (!t) { st_close(&f); free(centres); return fail("detokenize"); }
  int64_t N = t->shape[0], T = t->shape[1], H = 0, W = 0;
  const char *hs = st_meta(&f, "height"), *ws = st_meta(&f, "width");
  if (hs && ws) {
    H = atoll(hs);
    W = atoll(ws);
  } else {
    H = W = (int64_t)llround(sqrt((double)T));
  }
  if (H < 1 || W < 1 || H * W != T) {
    igpt_err("%s: %lld tokens per image is not %s%lldx%lld", tokpath, (long long)T,
             hs ? "the height x width of its metadata, " : "a square, ", (long long)H, (long long)W);
    st_close(&f);
    free(centres);
    return fail("detokenize");
  }
  uint8_t *rgb = xmalloc((size_t)(N * T) * 3 + 1);
  int rc = palette_detokenize(centres, K, t->data, (size_t)(N * T), rgb);
  if (rc != 0) igpt_err_prefix("%s (%lld tokens per image)", tokpath, (long long)T);
  if (rc == 0 && out) {
    st_writer *w = st_writer_new();
    st_writer_add(w, "images", ST_U8, 4, (int64_t[]){N, H, W, 3}, rgb);
    if (lab) st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){N}, lab->data);
    rc = st_writer_save(w, out);
    st_writer_free(w);
  }
  int ng = (int)(N < ngrid ? N : ngrid);
  if (rc == 0 && png) {
    int cols = (int)ceil(sqrt((double)ng));
    rc = palette_png_grid(png, rgb, ng, (int)H, (int)W, cols);
  }
  st_close(&f);
  free(rgb);
  free(centres);
  if (rc != 0) return fail("detokenize");
  log_info("detokenize: %lld images of %lldx%lld%s%s%s%s", (long long)N, (long long)H, (long long)W,
           out ? " -> " : "", out ? out : "", png ? ", grid -> " : "", png ? png : "");
  if (json)
    print_json(json_pack("{s:I,s:s?,s:s?,s:i}", "images", (json_int_t)N, "out", out, "png", png,
                         "grid_images", png ? ng : 0));
  return 0;
}
