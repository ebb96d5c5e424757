// igpt palette: a k-means colour palette from an images file, or the official centres from .npy.
#include "cli/cli.h"
#include "base/npy.h"
#include "datasets/palette.h"
#include "base/safetensors.h"
#include "base/util.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
  fprintf(out,
          "usage: igpt palette --images IMAGES --out PALETTE [--k 512] [--pixels N] [--iters N]\n"
          "                    [--seed S] [--json] [--quiet]\n"
          "       igpt palette --from-npy kmeans_centers.npy --out PALETTE [--json]\n\n"
          "k-means colour palette (REFERENCE.md section 2): a deterministic sample of N pixels\n"
          "(default 1000000; all pixels when the file has fewer) mapped to [-1,1] (x/127.5 - 1),\n"
          "greedy k-means++ initialisation, then up to --iters Lloyd iterations (default 50; fewer\n"
          "when no pixel changes cluster). Same seed, same centres, whatever the thread count.\n"
          "--from-npy converts OpenAI's kmeans_centers.npy ([512,3] floats) as is.\n"
          "IMAGES: safetensors with `images` U8 [N,H,W,3]. PALETTE: safetensors, `clusters` F32 [K,3].\n");
}

static int from_npy(const char *npy, const char *out, int json) {
  float *c;
  int K;
  if (palette_load(npy, &c, &K) != 0) return fail("palette");
  const char *meta[] = {"source", npy, "k", NULL, NULL};
  char kbuf[16];
  snprintf(kbuf, sizeof kbuf, "%d", K);
  meta[3] = kbuf;
  int rc = palette_save(out, c, K, meta);
  free(c);
  if (rc != 0) return fail("palette");
  log_info("palette: %d centres from %s -> %s", K, npy, out);
  if (json) print_json(json_pack("{s:s,s:i,s:s}", "out", out, "k", K, "source", npy));
  return 0;
}

int cmd_palette(int argc, char **argv) {
  static const struct option opts[] = {
      {"images", required_argument, 0, 'i'}, {"out", required_argument, 0, 'o'},
      {"k", required_argument, 0, 'k'},      {"pixels", required_argument, 0, 'p'},
      {"iters", required_argument, 0, 't'},  {"seed", required_argument, 0, 's'},
      {"from-npy", required_argument, 0, 'n'}, {"json", no_argument, 0, 'j'},
      {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *images = NULL, *out = NULL, *npy = NULL;
  long K = PALETTE_K, pixels = 1000000, iters = 50, seed = 0;
  int json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'i': images = optarg; break;
      case 'o': out = optarg; break;
      case 'n': npy = optarg; break;
      case 'k': if (parse_long("palette", "--k", optarg, 1, PALETTE_MAX_K, &K)) return EXIT_USAGE; break;
      case 'p': if (parse_long("palette", "--pixels", optarg, 1, 4000000000L, &pixels)) return EXIT_USAGE; break;
      case 't': if (parse_long("palette", "--iters", optarg, 0, 100000, &iters)) return EXIT_USAGE; break;
      case 's': if (parse_long("palette", "--seed", optarg, 0, INT64_MAX, &seed)) return EXIT_USAGE; break;
      case 'j': json = 1; break;
      case 'q': igpt_log_level = 0; break;
      case 'h': usage(stdout); return 0;
      default: return usage_error("palette", "unknown option");
    }
  }
  if (optind < argc) return usage_error("palette", "unexpected argument '%s'", argv[optind]);
  if (!out) return usage_error("palette", "--out is required");
  if (npy && images) return usage_error("palette", "give --images or --from-npy, not both");
  if (npy) return from_npy(npy, out, json);
  if (!images) return usage_error("palette", "--images (or --from-npy) is required");

  st_file f;
  if (st_open(&f, images) != 0) return fail("palette");
  const st_tensor *t = st_expect(&f, "images", ST_U8, 4, (int64_t[]){-1, -1, -1, 3});
  if (!t) { st_close(&f); return fail("palette"); }
  size_t total = st_numel(t) / 3;
  if (total == 0) { st_close(&f); igpt_err("%s: `images` holds no pixels", images); return fail("palette"); }
  size_t n = (size_t)pixels < total ? (size_t)pixels : total;
  uint8_t *sample = xmalloc(3 * n);
  double t0 = now_seconds();
  n = palette_sample(t->data, total, n, (uint64_t)seed, sample);
  st_close(&f);
  log_info("palette: %zu of %zu pixels sampled (seed %ld) in %.2f s", n, total, seed, now_seconds() - t0);
  float *centres = xmalloc(sizeof(float) * 3 * (size_t)K);
  kmeans_stats st;
  if (kmeans_fit(sample, n, (int)K, (int)iters, (uint64_t)seed, centres, &st, igpt_log_level > 0) != 0) {
    free(sample);
    free(centres);
    return fail("palette");
  }
  free(sample);
  char kb[16], nb[32], sb[32], ib[16], inb[32];
  snprintf(kb, sizeof kb, "%ld", K);
  snprintf(nb, sizeof nb, "%zu", n);
  snprintf(sb, sizeof sb, "%ld", seed);
  snprintf(ib, sizeof ib, "%d", st.iters_run);
  snprintf(inb, sizeof inb, "%.17g", st.inertia);
  const char *meta[] = {"source", images, "k", kb, "pixels", nb, "seed", sb, "iters", ib,
                        "inertia", inb, "init", "greedy k-means++", NULL};
  int rc = palette_save(out, centres, (int)K, meta);
  free(centres);
  if (rc != 0) return fail("palette");
  log_info("palette: %ld centres, %d iterations, inertia %.6g (%.3g per pixel), %d re-seeded; "
           "k-means++ %.2f s, Lloyd %.2f s -> %s", K, st.iters_run, st.inertia, st.inertia / (double)n,
           st.reseeded, st.seconds_init, st.seconds_lloyd, out);
  if (json)
    print_json(json_pack("{s:s,s:i,s:I,s:I,s:i,s:i,s:f,s:f,s:f,s:f}", "out", out, "k", (int)K,
                         "pixels", (json_int_t)n, "seed", (json_int_t)seed, "iters", st.iters_run,
                         "reseeded", st.reseeded, "inertia", st.inertia, "inertia_init",
                         st.inertia_init, "seconds_init", st.seconds_init, "seconds_lloyd",
                         st.seconds_lloyd));
  return 0;
}
