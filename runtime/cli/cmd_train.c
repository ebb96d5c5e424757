// igpt train: pretraining from the command line; the loop lives in train.c.
#include "cli/cli.h"
#include "engine/comm.h"
#include "engine/model.h"
#include "engine/train.h"
#include "base/jsonpath.h"
#include "base/util.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
  printf(
      "usage: igpt train --config C.json --tokens T.safetensors --out DIR [options]\n\n"
      "Pretrains an Image GPT model (autoregressive or BERT) on a tokens file with AdamW\n"
      "(b1 0.9, b2 0.95, eps 1e-8), linear warmup then cosine decay to 0. Writes in DIR:\n"
      "  model.safetensors  weights, config in __metadata__ (what the other verbs read)\n"
      "  state.safetensors  Adam moments, step, data position, RNG states, fixed options\n"
      "  log.jsonl          one JSON line per step: step, loss (nats/token), lr, grad_norm\n"
      "                     (before clipping), epoch, step_ms, elapsed_s\n"
      "A killed run continues with --resume, bit-identically on the CPU with the same thread\n"
      "count (OMP_NUM_THREADS). SIGINT/SIGTERM finish the step, write a checkpoint and stop.\n"
      "Data parallel under mpirun or srun (igpt --version names the communicators): --batch is\n"
      "the global batch, each rank trains on its share of it, gradients are averaged, rank 0\n"
      "writes; --resume works with any world size that divides --batch (docs/slurm.md).\n\n"
      "  --config C          model config JSON (below)\n"
      "  --tokens T          safetensors with `tokens` U16 [N, n_ctx], values < n_vocab\n"
      "  --out DIR           output directory (created)\n"
      "  --steps N           optimizer steps (1000); 0 writes the initialised model (the untrained\n"
      "                      baseline: same architecture and seed, no update)\n"
      "  --batch N           sequences per step (8)\n"
      "  --micro-batch N     sequences per forward/backward; gradients of batch/N micro-batches are\n"
      "                      summed then averaged (default: the batch)\n"
      "  --accum K           the same as --micro-batch batch/K\n"
      "  --lr X              peak learning rate (0.001)\n"
      "  --warmup N          linear warmup steps (5%% of --steps)\n"
      "  --clip X            clip the global gradient norm to X (0: off, the default)\n"
      "  --weight-decay X    AdamW decoupled weight decay on matrices (0)\n"
      "  --seed N            initialisation, data order and BERT masks (0)\n"
      "  --checkpoint-every N  steps between checkpoints (500; 0: only at the end)\n"
      "  --keep-every N      also keep DIR/model-step<N>.safetensors every N steps and at step 0\n"
      "                      (each records its step in __metadata__[\"step\"]; 0: off, the default)\n"
      "  --log-every N       progress line every N steps when stderr is not a terminal (10)\n"
      "  --objective ar|bert override the config's objective\n"
      "  --resume            continue the checkpoint in DIR (starts fresh when there is none);\n"
      "                      refuses when an option that changes the numbers differs, naming it\n"
      "  --json              print a summary on stdout: step, loss, median_step_ms, tokens_per_s\n"
      "  --quiet             no progress lines\n"
      DEVICE_HELP "\n"
      "Config JSON: the model's fields and an optional \"train\" section whose keys mirror the\n"
      "flags (flags win):\n"
      "  {\"n_layer\": 2, \"n_embd\": 64, \"n_head\": 4, \"n_ctx\": 64, \"n_vocab\": 16,\n"
      "   \"bias\": false, \"objective\": \"ar\", \"mask_prob\": 0.15, \"n_classes\": 0,\n"
      "   \"train\": {\"steps\": 1000, \"batch\": 8, \"micro_batch\": 8, \"lr\": 0.001, \"warmup\": 50,\n"
      "             \"clip\": 0, \"weight_decay\": 0, \"seed\": 0, \"checkpoint_every\": 500,\n"
      "             \"log_every\": 10, \"keep_every\": 0}}\n"
      "n_layer, n_embd, n_head, n_ctx, n_vocab are required; bias false is the official layout.\n\n"
      "Exit status: 0 ok, 1 failure, 2 usage error.\n");
}

// Reads the config file: the model part through model_config_parse, the "train" section into o.
static int load_config(const char *path, model_config *cfg, train_opts *o) {
  json_t *root = jp_load_file(path);  // a key given twice is refused, not resolved to its last value
  if (!root) return -1;
  int rc = -1;
  if (!json_is_object(root)) {
    igpt_err("%s: the config must be a JSON object", path);
    goto out;
  }
  json_t *train = json_object_get(root, "train");
  if (train && train_opts_from_json(train, path, o) < 0) goto out;
  json_object_del(root, "train");
  char *model_json = json_dumps(root, JSON_COMPACT);
  rc = model_config_parse(model_json, path, cfg);
  free(model_json);
out:
  json_decref(root);
  return rc;
}

int cmd_train(int argc, char **argv) {
  enum { O_CONFIG = 256, O_TOKENS, O_OUT, O_STEPS, O_BATCH, O_MICRO, O_ACCUM, O_LR, O_WARMUP,
         O_CLIP, O_WD, O_SEED, O_CKPT, O_KEEP, O_LOGEVERY, O_OBJ, O_RESUME, O_JSON, O_QUIET, O_HELP };
  static const struct option opts[] = {
      {"config", 1, 0, O_CONFIG}, {"tokens", 1, 0, O_TOKENS}, {"out", 1, 0, O_OUT},
      {"steps", 1, 0, O_STEPS}, {"batch", 1, 0, O_BATCH}, {"micro-batch", 1, 0, O_MICRO},
      {"accum", 1, 0, O_ACCUM}, {"lr", 1, 0, O_LR}, {"warmup", 1, 0, O_WARMUP},
      {"clip", 1, 0, O_CLIP}, {"weight-decay", 1, 0, O_WD}, {"seed", 1, 0, O_SEED},
      {"checkpoint-every", 1, 0, O_CKPT}, {"keep-every", 1, 0, O_KEEP}, {"log-every", 1, 0, O_LOGEVERY},
      {"objective", 1, 0, O_OBJ}, {"resume", 0, 0, O_RESUME}, {"json", 0, 0, O_JSON},
      {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, O_HELP}, DEVICE_OPTIONS, {0, 0, 0, 0}};
  const char *config = NULL, *tokens = NULL, *out = NULL, *objective = NULL, *device = NULL, *precision = NULL;
  // Flags are applied after the config's "train" section, so remember them first.
  long steps = -1, batch = -1, micro = -1, accum = -1, warmup = -2, seed = -1, ckpt = -1, keep = -1, logev = -1;
  double lr = -1, clip = -1, wd = -1;
  bool resume = false, json = false;
  optind = 1;
  int c;
  const char *V = "train";
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    int r = 0;
    switch (c) {
      case O_CONFIG: config = optarg; break;
      case O_TOKENS: tokens = optarg; break;
      case O_OUT: out = optarg; break;
      case O_STEPS: r = parse_long(V, "--steps", optarg, 0, 1L << 40, &steps); break;
      case O_BATCH: r = parse_long(V, "--batch", optarg, 1, 1 << 20, &batch); break;
      case O_MICRO: r = parse_long(V, "--micro-batch", optarg, 1, 1 << 20, &micro); break;
      case O_ACCUM: r = parse_long(V, "--accum", optarg, 1, 1 << 20, &accum); break;
      case O_LR: r = parse_double(V, "--lr", optarg, 1e-12, 10, &lr); break;
      case O_WARMUP: r = parse_long(V, "--warmup", optarg, 0, 1L << 40, &warmup); break;
      case O_CLIP: r = parse_double(V, "--clip", optarg, 0, 1e30, &clip); break;
      case O_WD: r = parse_double(V, "--weight-decay", optarg, 0, 0.999, &wd); break;
      case O_SEED: r = parse_long(V, "--seed", optarg, 0, 1L << 62, &seed); break;
      case O_CKPT: r = parse_long(V, "--checkpoint-every", optarg, 0, 1L << 40, &ckpt); break;
      case O_KEEP: r = parse_long(V, "--keep-every", optarg, 0, 1L << 40, &keep); break;
      case O_LOGEVERY: r = parse_long(V, "--log-every", optarg, 1, 1L << 40, &logev); break;
      case O_OBJ:
        if (strcmp(optarg, "ar") && strcmp(optarg, "bert"))
          return usage_error(V, "--objective wants ar or bert, got '%s'", optarg);
        objective = optarg;
        break;
      case O_RESUME: resume = true; break;
      case O_JSON: json = true; break;
      case O_QUIET: igpt_log_level = 0; break;
      case O_HELP: help(); return 0;
      case OPT_DEVICE: device = optarg; break;
      case OPT_PRECISION: precision = optarg; break;
      default: return usage_error(V, "unknown option");
    }
    if (r) return r;
  }
  if (optind < argc) return usage_error(V, "unexpected argument '%s'", argv[optind]);
  if (!config || !tokens || !out) return usage_error(V, "--config, --tokens and --out are required");
  if (micro > 0 && accum > 0) return usage_error(V, "give --micro-batch or --accum, not both");

  model_config cfg;
  train_opts o;
  train_opts_default(&o);
  if (load_config(config, &cfg, &o) < 0) return fail(V);
  if (objective) cfg.objective = strcmp(objective, "bert") ? OBJ_AR : OBJ_BERT;
  if (model_config_validate(&cfg, config) < 0) return fail(V);
  // A flag wins over the config and clears its option's from_config bit (messages name the flag).
#define FLAG(cond, field, value, bit) if (cond) o.field = value, o.from_config &= ~(unsigned)(bit)
  FLAG(steps >= 0, steps, steps, TRAIN_OPT_STEPS);
  FLAG(batch > 0, batch, (int)batch, TRAIN_OPT_BATCH);
  FLAG(micro > 0, micro_batch, (int)micro, TRAIN_OPT_MICRO);
  FLAG(warmup >= 0, warmup, warmup, TRAIN_OPT_WARMUP);
  FLAG(ckpt >= 0, checkpoint_every, ckpt, TRAIN_OPT_CKPT);
  FLAG(logev > 0, log_every, logev, TRAIN_OPT_LOGEV);
  FLAG(lr > 0, lr, lr, TRAIN_OPT_LR);
  FLAG(clip >= 0, clip, clip, TRAIN_OPT_CLIP);
  FLAG(wd >= 0, weight_decay, wd, TRAIN_OPT_WD);
#undef FLAG
  if (seed >= 0) o.seed = (uint64_t)seed;
  if (keep >= 0) o.keep_every = keep;
  if (accum > 0) {
    if (o.batch % accum)
      return usage_error(V, "--accum %ld must divide %s %d", accum,
                         o.from_config & TRAIN_OPT_BATCH ? "the config's train.batch" : "--batch", o.batch);
    o.micro_batch = o.batch / (int)accum;
    o.from_config &= ~(unsigned)TRAIN_OPT_MICRO;
  }
  int frc = train_opts_finish(&o);
  if (frc == -2) return fail(V);  // a config field: the file is wrong, not the command line
  if (frc < 0) return usage_error(V, "%s", igpt_errmsg());

  int dr = device_flags(V, device, precision);
  if (dr) return dr;
  json_t *res = NULL;
  if (train_run(&cfg, &o, tokens, out, resume, json ? &res : NULL) < 0) return fail(V);
  if (res && comm_rank() == 0) print_json(res);  // data parallel: one summary, rank 0's
  else json_decref(res);
  return 0;
}
