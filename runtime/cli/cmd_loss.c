// igpt loss: the generative loss of a model on a tokens file, in nats per token (the paper's
// unit) and in bits (nats / ln 2), batched, without gradients.
#include "cli/cli.h"
#include "engine/batcher.h"
#include "engine/featurize.h"
#include "engine/model.h"
#include "base/safetensors.h"
#include "base/util.h"
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void) {
  printf("usage: igpt loss --model M.safetensors --tokens T.safetensors [--batch B] [--limit N]\n"
         "                 [--seed S] [--json]\n\n"
         "Mean generative cross-entropy of the model on the sequences of T (tensor 'tokens', U16 [N,T],\n"
         "T <= the model's n_ctx): position t predicts tokens[:, t] from sos and tokens[:, :t].\n"
         "Reported in nats per token, the paper's unit (released iGPT-S/M/L on ImageNet 32x32:\n"
         "2.0895 / 2.0614 / 2.0466), and in bits per dimension = nats / ln 2, one dimension being\n"
         "one palette token (one pixel). For a BERT model: the mean over masked tokens, masks drawn\n"
         "with --seed at the model's mask_prob.\n"
         "  --batch B   sequences per forward pass (default 8)\n"
         "  --limit N   only the first N sequences\n"
         "  --seed S    BERT mask seed (default 0)\n"
         "  --json      {\"nats_per_token\",\"bits_per_dim\",\"n_sequences\",\"n_tokens\",...} on stdout\n"
         DEVICE_HELP
         "Progress goes to stderr.\n");
}

int cmd_loss(int argc, char **argv) {
  static const struct option opts[] = {
      {"model", required_argument, 0, 'm'}, {"tokens", required_argument, 0, 't'},
      {"batch", required_argument, 0, 'b'}, {"limit", required_argument, 0, 'n'},
      {"seed", required_argument, 0, 's'},  {"json", no_argument, 0, 'j'},
      {"help", no_argument, 0, 'h'},        DEVICE_OPTIONS, {0, 0, 0, 0}};
  const char *mpath = NULL, *tpath = NULL, *device = NULL, *precision = NULL;
  long batch = 8, limit = -1, seed = 0;
  int json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'm': mpath = optarg; break;
      case 't': tpath = optarg; break;
      case 'b': if (parse_long("loss", "--batch", optarg, 1, 1 << 16, &batch)) return EXIT_USAGE; break;
      case 'n': if (parse_long("loss", "--limit", optarg, 1, 1L << 40, &limit)) return EXIT_USAGE; break;
      case 's': if (parse_long("loss", "--seed", optarg, 0, 1L << 62, &seed)) return EXIT_USAGE; break;
      case 'j': json = 1; break;
      case 'h': usage(); return 0;
      case OPT_DEVICE: device = optarg; break;
      case OPT_PRECISION: precision = optarg; break;
      default: return usage_error("loss", "unknown option");
    }
  }
  if (optind != argc) return usage_error("loss", "unexpected argument '%s'", argv[optind]);
  if (!mpath || !tpath) return usage_error("loss", "--model and --tokens are required");

  int dr = device_flags("loss", device, precision);
  if (dr) return dr;
  model *m = model_load(mpath);
  if (!m) return fail("loss");
  st_file f;
  if (st_open(&f, tpath)) {
    model_free(m);
    return fail("loss");
  }
  int rc = 1;
  uint8_t *mask = NULL;
  const st_tensor *tt = st_expect(&f, "tokens", ST_U16, 2, NULL);
  if (!tt) goto out;
  int64_t N = tt->shape[0], T = tt->shape[1];
  if (tokens_check_labels(&f, N) < 0) goto out;
  if (T < 1 || T > m->cfg.n_ctx) {
    igpt_err("%s: sequences of %lld tokens, but the model %s has n_ctx %d", tpath, (long long)T, mpath, m->cfg.n_ctx);
    goto out;
  }
  if (limit > 0 && limit < N) N = limit;
  if (N < 1) {
    igpt_err("%s: no sequences", tpath);
    goto out;
  }
  bool bert = m->cfg.objective == OBJ_BERT;
  rng_t rng;
  rng_seed_stream(&rng, (uint64_t)seed, 0x6d61736b /* "mask" */);
  if (bert) mask = xmalloc((size_t)batch * T);
  features_loss sum = {0};  // nats over the counted tokens
  double t0 = now_seconds(), last = t0;
  bool tty = isatty(2);
  for (int64_t i = 0; i < N; i += batch) {
    int B = (int)(N - i < batch ? N - i : batch);
    const uint16_t *tok = (const uint16_t *)tt->data + (size_t)i * T;
    if (bert) model_bert_mask(&rng, mask, B, (int)T, m->cfg.mask_prob);
    model_batch b = {.tokens = tok, .mask = mask, .B = B, .T = (int)T, .head = true};
    if (model_forward(m, &b)) {
      igpt_err_prefix("%s: sequences %lld..%lld", tpath, (long long)i, (long long)(i + B - 1));
      goto out;
    }
    if (features_loss_add(&sum, m, B, (int)T, i)) {
      igpt_err_prefix("%s (model %s)", tpath, mpath);
      goto out;
    }
    double now = now_seconds();
    if (now - last > 1.0 || i + B == N) {
      double rate = (double)(i + B) / (now - t0);
      fprintf(stderr, "%sloss: %lld/%lld sequences, %.4f nats/token, %.1f seq/s, ETA %.0fs%s", tty ? "\r" : "",
              (long long)(i + B), (long long)N, sum.tokens ? sum.nats / (double)sum.tokens : 0.0, rate, (N - i - B) / rate,
              tty && i + B < N ? "" : "\n");
      last = now;
    }
  }
  if (!sum.tokens) {
    igpt_err("%s: no token was counted (BERT masks all empty?)", tpath);
    goto out;
  }
  double npt = sum.nats / (double)sum.tokens;
  if (json)
    print_json(json_pack("{s:f, s:f, s:I, s:I, s:s, s:s, s:s}", "nats_per_token", npt, "bits_per_dim", npt / log(2.0),
                         "n_sequences", (json_int_t)N, "n_tokens", (json_int_t)sum.tokens, "model", mpath,
                         "tokens", tpath, "objective", bert ? "bert" : "ar"));
  else
    printf("%.6f nats/token  %.6f bits/dim  (%lld sequences, %lld tokens)\n", npt, npt / log(2.0), (long long)N,
           (long long)sum.tokens);
  rc = 0;
out:
  if (rc) fail("loss");
  free(mask);
  st_close(&f);
  model_free(m);
  return rc;
}
