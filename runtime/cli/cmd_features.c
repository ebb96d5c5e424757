// igpt features: a model's pooled per-layer features over a tokens file (features.h).
#include "cli/cli.h"
#include "engine/batcher.h"
#include "engine/comm.h"
#include "engine/featurize.h"
#include "engine/model.h"
#include "base/safetensors.h"
#include "base/util.h"
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *VERB = "features";

static void usage(FILE *out) {
  fprintf(out,
    "usage: igpt features --model M --tokens T --out F [options]\n"
    "       igpt features --pixels IMAGES --out F [--json]\n"
    "Every layer's features in one forward pass per batch (no backward): layer_<l> F32 [N, C] for\n"
    "l = 0..L: l < L the mean over positions of norm(h_l) (block l's first norm, gain included),\n"
    "l = L the mean of the final norm's output; labels I32 [N] copied from the tokens file (-1 when\n"
    "it has none). The output appears atomically. Under mpirun or srun each rank extracts a slice\n"
    "of the images and rank 0 writes the file.\n\n"
    "  --model M      a model file (or a training directory holding model.safetensors)\n"
    "  --tokens T     tokens U16 [N, T] (T <= n_ctx), labels I32 [N] when known\n"
    "  --out F        the features file to write\n"
    "  --raw          also raw_<l>: the means of h_l before any norm (l = L: after the last block);\n"
    "                 keeps every layer's activations, so use a smaller --batch\n"
    "  --batch B      images per forward pass (default 32)\n"
    "  --masks K      BERT models: K evaluation masks per image (default 1); layer_<l> is then\n"
    "                 [K, N, C] (the probe ensembles them by the modal prediction)\n"
    "  --seed S       BERT masks' seed (default 0); image i under mask k always gets the same mask\n"
    "  --loss         also the generative loss of the same forward pass (what igpt loss measures:\n"
    "                 nats per token over every position, BERT over the positions its masks mask),\n"
    "                 in --json as nats_per_token, bits_per_dim and n_tokens, so a table needs no\n"
    "                 second pass over its test set\n"
    "  --pixels I     no model: the raw-pixel baseline, layer_0 F32 [N, H*W*3] = the images of I\n"
    "                 (images U8 [N,H,W,3], labels I32 [N]) scaled to [-1, 1], for the same probe;\n"
    "                 [N, H*W] for a grey set (all three channels equal everywhere)\n"
    "  --json         a summary on stdout; --quiet: no progress\n"
    DEVICE_HELP);
}

// --pixels: the images themselves as one layer of features (what a probe on raw pixels sees).
static int pixel_features(const char *images, const char *out_path, int json) {
  st_file f;
  if (st_open(&f, images)) return fail(VERB);
  int rc = 1;
  const st_tensor *im = st_expect(&f, "images", ST_U8, 4, NULL), *lt = NULL;
  if (im) lt = st_expect(&f, "labels", ST_I32, 1, (int64_t[]){im->shape[0]});
  if (!im || !lt) {
    igpt_err_prefix("--pixels");
    st_close(&f);
    return fail(VERB);
  }
  const uint8_t *px = im->data;
  int64_t N = im->shape[0], P = im->shape[1] * im->shape[2], C = im->shape[3];
  // a grey set (every pixel's channels equal, as the file repeats them) keeps one channel: the
  // same information in a third of the width, so the probe's fits cost a third
  bool grey = C > 1;
  for (int64_t i = 0; i < N * P && grey; i++)
    for (int64_t ch = 1; ch < C; ch++) grey &= px[i * C + ch] == px[i * C];
  int64_t step = grey ? C : 1, D = grey ? P : P * C;
  float *x = xmalloc(sizeof(float) * (size_t)(N * D));
  for (int64_t i = 0; i < N * D; i++) x[i] = (float)px[i * step] / 127.5f - 1.0f;
  st_writer *w = st_writer_new();
  st_writer_add(w, "layer_0", ST_F32, 2, (int64_t[]){N, D}, x);
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){N}, lt->data);
  st_writer_meta(w, "pixels", images);
  if (st_writer_save(w, out_path) == 0) {
    rc = 0;
    if (json)
      print_json(json_pack("{s:s,s:I,s:i,s:I,s:s}", "out", out_path, "n", (json_int_t)N, "layers", 1, "d",
                           (json_int_t)D, "features", grey ? "raw grey pixels in [-1, 1]" : "raw pixels in [-1, 1]"));
  } else fail(VERB);
  st_writer_free(w);
  free(x);
  st_close(&f);
  return rc;
}

int cmd_features(int argc, char **argv) {
  static const struct option opts[] = {
    {"model", 1, 0, 'm'}, {"tokens", 1, 0, 't'}, {"out", 1, 0, 'o'}, {"raw", 0, 0, 'r'},
    {"batch", 1, 0, 'b'}, {"masks", 1, 0, 'k'}, {"seed", 1, 0, 's'}, {"json", 0, 0, 'j'},
    {"quiet", 0, 0, 'q'}, {"pixels", 1, 0, 'p'}, {"loss", 0, 0, 'l'}, {"help", 0, 0, 'h'}, DEVICE_OPTIONS, {0}};
  const char *model_path = NULL, *tok_path = NULL, *out_path = NULL, *pixels = NULL, *device = NULL,
             *precision = NULL;
  long batch = 32, masks = 1, seed = 0;
  int raw = 0, json = 0, quiet = 0, with_loss = 0, o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (o) {
      case 'm': model_path = optarg; break;
      case 't': tok_path = optarg; break;
      case 'o': out_path = optarg; break;
      case 'r': raw = 1; break;
      case 'b': if (parse_long(VERB, "--batch", optarg, 1, 1 << 16, &batch)) return EXIT_USAGE; break;
      case 'k': if (parse_long(VERB, "--masks", optarg, 1, 1024, &masks)) return EXIT_USAGE; break;
      case 's': if (parse_long(VERB, "--seed", optarg, 0, 0x7fffffffffffffffL, &seed)) return EXIT_USAGE; break;
      case 'j': json = 1; break;
      case 'q': quiet = 1; break;
      case 'p': pixels = optarg; break;
      case 'l': with_loss = 1; break;
      case 'h': usage(stdout); return 0;
      case OPT_DEVICE: device = optarg; break;
      case OPT_PRECISION: precision = optarg; break;
      default: return usage_error(VERB, "unknown option");
    }
  }
  if (optind < argc) return usage_error(VERB, "unexpected argument '%s'", argv[optind]);
  if (pixels) {
    if (model_path || tok_path || raw || masks > 1 || with_loss)
      return usage_error(VERB, "--pixels takes no model, tokens, --raw, --masks or --loss");
    if (!out_path) return usage_error(VERB, "--out is required");
    return pixel_features(pixels, out_path, json);
  }
  if (!model_path || !tok_path || !out_path) return usage_error(VERB, "--model, --tokens and --out are required");

  int dr = device_flags(VERB, device, precision);
  if (dr) return dr;
  struct stat sb;
  char *mpath = (!stat(model_path, &sb) && S_ISDIR(sb.st_mode)) ? xasprintf("%s/model.safetensors", model_path)
                                                                 : xstrdup(model_path);
  int rc = 1;
  model *m = NULL;
  st_file tf = {0};
  float **feat = NULL, **rawf = NULL;
  int32_t *labels = NULL;
  if (!(m = model_load(mpath))) { fail(VERB); goto done; }
  if (m->cfg.objective != OBJ_BERT && masks > 1) {
    rc = usage_error(VERB, "--masks %ld: %s is autoregressive; masks are for BERT models", masks, mpath);
    goto done;
  }
  if (st_open(&tf, tok_path)) { fail(VERB); goto done; }
  const st_tensor *tt = st_expect(&tf, "tokens", ST_U16, 2, NULL);
  if (!tt) { fail(VERB); goto done; }
  int64_t N = tt->shape[0], T = tt->shape[1];
  if (N < 1 || T < 1 || T > m->cfg.n_ctx) {
    igpt_err("%s: tokens is [%lld, %lld]; the model takes 1..%d positions (n_ctx)", tok_path,
             (long long)N, (long long)T, m->cfg.n_ctx);
    fail(VERB);
    goto done;
  }
  const uint16_t *tok = tt->data;
  for (int64_t i = 0; i < N * T; i++)
    if (tok[i] >= m->cfg.n_vocab) {
      igpt_err("%s: tokens[%lld, %lld] = %u is outside the palette (n_vocab %d)", tok_path,
               (long long)(i / T), (long long)(i % T), tok[i], m->cfg.n_vocab);
      fail(VERB);
      goto done;
    }
  labels = xmalloc(sizeof(int32_t) * N);
  const st_tensor *lt = st_get(&tf, "labels");
  if (lt) {
    if (tokens_check_labels(&tf, N) < 0) { fail(VERB); goto done; }
    memcpy(labels, lt->data, sizeof(int32_t) * N);
  } else {
    log_warn("%s has no labels: the features get -1 (fine for features, not for a probe)", tok_path);
    for (int64_t i = 0; i < N; i++) labels[i] = -1;
  }
  features_loss loss = {0};
  features_opts fo = {.batch = (int)batch, .masks = (int)masks, .seed = (uint64_t)seed, .raw = raw,
                      .progress = !quiet, .loss = with_loss ? &loss : NULL};
  double t0 = now_seconds();
  // under mpirun or srun each rank extracts a slice of the images; rank 0 writes the file
  if (features_extract_ranks(m, tok, N, (int)T, &fo, &feat, raw ? &rawf : NULL)) {
    igpt_err_prefix("%s on %s", mpath, tok_path);
    fail(VERB);
    goto done;
  }
  double secs = now_seconds() - t0;
  const int L = m->cfg.n_layer, C = m->cfg.n_embd;
  // Finite weights can still overflow: no NaN features reach a probe.
  for (int l = 0; l <= L; l++) {
    int64_t n = masks * N * C, bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
      if (!isfinite(feat[l][i])) bad = i;
    if (bad >= 0) {
      igpt_err("%s on %s: layer_%d of image %lld (mask %lld) is %g: the model's activations are not finite; "
               "nothing written to %s", mpath, tok_path, l, (long long)(bad / C % N), (long long)(bad / C / N),
               (double)feat[l][bad], out_path);
      fail(VERB);
      goto done;
    }
  }
  if (with_loss && !loss.tokens) {
    igpt_err("%s on %s: --loss counted no token (BERT masks all empty?); nothing written to %s", mpath, tok_path,
             out_path);
    fail(VERB);
    goto done;
  }
  if (comm_rank() != 0) { rc = 0; goto done; }
  st_writer *w = st_writer_new();
  char name[32];
  for (int l = 0; l <= L; l++) {
    snprintf(name, sizeof name, "layer_%d", l);
    if (masks > 1) st_writer_add(w, name, ST_F32, 3, (int64_t[]){masks, N, C}, feat[l]);
    else st_writer_add(w, name, ST_F32, 2, (int64_t[]){N, C}, feat[l]);
    if (raw) {
      snprintf(name, sizeof name, "raw_%d", l);
      if (masks > 1) st_writer_add(w, name, ST_F32, 3, (int64_t[]){masks, N, C}, rawf[l]);
      else st_writer_add(w, name, ST_F32, 2, (int64_t[]){N, C}, rawf[l]);
    }
  }
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){N}, labels);
  char *cfg = model_config_dump(&m->cfg), *ks = xasprintf("%ld", masks), *ss = xasprintf("%ld", seed);
  st_writer_meta(w, "model", mpath);
  st_writer_meta(w, "tokens", tok_path);
  st_writer_meta(w, "config", cfg);
  st_writer_meta(w, "masks", ks);
  st_writer_meta(w, "mask_seed", ss);
  int wrc = st_writer_save(w, out_path);
  st_writer_free(w);
  free(cfg); free(ks); free(ss);
  if (wrc) { fail(VERB); goto done; }
  if (!quiet) log_info("features: %lld images x %ld masks, %d layers of %d in %.1f s -> %s", (long long)N,
                       masks, L + 1, C, secs, out_path);
  if (with_loss && !quiet)
    log_info("features: generative loss %.6f nats/token over %lld tokens", loss.nats / (double)loss.tokens,
             (long long)loss.tokens);
  if (json) {
    json_t *js = json_pack("{s:s,s:I,s:i,s:i,s:i,s:b,s:f,s:f,s:i}", "out", out_path, "n", (json_int_t)N,
                           "layers", L + 1, "d", C, "masks", (int)masks, "raw", raw, "seconds", secs,
                           "images_per_s", N * masks / (secs > 0 ? secs : 1e-9), "world_size", comm_size());
    if (with_loss) {
      double npt = loss.nats / (double)loss.tokens;
      json_object_set_new(js, "nats_per_token", json_real(npt));
      json_object_set_new(js, "bits_per_dim", json_real(npt / log(2.0)));
      json_object_set_new(js, "n_tokens", json_integer((json_int_t)loss.tokens));
      json_object_set_new(js, "objective", json_string(m->cfg.objective == OBJ_BERT ? "bert" : "ar"));
    }
    print_json(js);
  }
  rc = 0;
done:
  if (feat) for (int l = 0; l <= m->cfg.n_layer; l++) free(feat[l]);
  if (rawf) for (int l = 0; l <= m->cfg.n_layer; l++) free(rawf[l]);
  free(feat); free(rawf); free(labels);
  st_close(&tf);
  model_free(m);
  free(mpath);
  return rc;
}
