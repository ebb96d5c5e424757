// igpt finetune: fine-tuning with the classifier head from the command line (finetune.h).
#include "cli/cli.h"
#include "engine/comm.h"
#include "engine/finetune.h"
#include "eval/probe_head.h"
#include "base/util.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *VERB = "finetune";

static void usage(FILE *out, const finetune_opts *d) {
  fprintf(out,
    "usage: igpt finetune --model M --train T --val T --test T --out DIR [options]\n"
    "Fine-tunes a pretrained model with the classifier head on the mean-pooled final norm\n"
    "(zero-initialised and added when the model has none; step 0 records the untrained head's\n"
    "validation accuracy), loss = L_gen + L_clf (--loss clf: L_clf alone), AdamW (b1 0.9,\n"
    "b2 0.95), linear warmup then cosine decay. Every --eval-every steps: validation accuracy and\n"
    "a checkpoint; the test accuracy is measured at each new best validation step and the best model\n"
    "kept as DIR/best.safetensors; training stops after --patience evaluations without improvement.\n"
    "A killed run continues with --resume (bit-identical with the same OMP_NUM_THREADS).\n\n"
    "  --model M            pretrained model file (or a training directory)\n"
    "  --train/--val/--test T  tokens files with labels (tokens U16 [N, T], labels I32 [N])\n"
    "  --out DIR            output directory\n"
    "  --train-images I     augmentation: the training images (images U8 [N,H,W,3], row i = row i\n"
    "  --palette P          of --train) and the palette that tokenized them; each batch image is\n"
    "                       reflect-padded by --pad (4), randomly cropped back to HxW and flipped\n"
    "                       horizontally with probability 1/2, then tokenized with P\n"
    "  --steps N (%lld)  --batch N (%d)  --lr X (%g, about 10x below pretraining)\n"
    "  --head-lr X          the classifier head's peak rate on the same schedule (default: --lr)\n"
    "  --head-init zero|probe  the head's start: zeros (default, as the official code) or the linear\n"
    "                       probe's solution on the final norm's pooled features (C swept on --val,\n"
    "                       no bias), so step 0 already scores the probe's accuracy\n"
    "  --head-features DIR  with --head-init probe: those features read from DIR/train.safetensors\n"
    "                       and DIR/val.safetensors (igpt features of this model on --train and --val;\n"
    "                       rows, labels and width checked) instead of a forward pass over both\n"
    "  --loss joint|clf     joint (default, the paper's L_gen + L_clf) or L_clf alone (the paper's\n"
    "                       alternative; the generative head is then left as pretrained)\n"
    "  --warmup N (5%% of steps)  --weight-decay X (0)  --clip X (0: off)\n"
    "  --eval-every N (%d)  --patience N (%d)  --eval-batch N (%d)  --seed N (0)\n"
    "  --resume             continue the checkpoint in DIR\n"
    "  --json               the result on stdout: best_step, best_val_acc, test_acc, test_correct\n"
    "                       (each test image's outcome at the best step, hex), n_test, evaluations\n"
    "  --quiet              no progress\n"
    DEVICE_HELP,
    (long long)d->steps, d->batch, d->lr, d->eval_every, d->patience, d->eval_batch);
}

int cmd_finetune(int argc, char **argv) {
  static const struct option opts[] = {
    {"model", 1, 0, 'm'}, {"train", 1, 0, 't'}, {"val", 1, 0, 'a'}, {"test", 1, 0, 'e'},
    {"out", 1, 0, 'o'}, {"train-images", 1, 0, 'I'}, {"palette", 1, 0, 'P'}, {"steps", 1, 0, 's'},
    {"batch", 1, 0, 'b'}, {"lr", 1, 0, 'l'}, {"warmup", 1, 0, 'w'}, {"weight-decay", 1, 0, 'W'},
    {"clip", 1, 0, 'c'}, {"eval-every", 1, 0, 'E'}, {"patience", 1, 0, 'p'}, {"eval-batch", 1, 0, 'B'},
    {"pad", 1, 0, 'D'}, {"head-lr", 1, 0, 'H'}, {"head-init", 1, 0, 'i'}, {"head-features", 1, 0, 'F'}, {"loss", 1, 0, 'L'}, {"seed", 1, 0, 'S'}, {"resume", 0, 0, 'r'}, {"json", 0, 0, 'j'},
    {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, DEVICE_OPTIONS, {0}};
  const char *device = NULL, *precision = NULL;
  finetune_opts o;
  finetune_opts_default(&o);
  o.progress = true;
  long v;
  int json = 0, c, head_probe = 0;
  const char *head_features = NULL;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'm': o.model_path = optarg; break;
      case 't': o.train = optarg; break;
      case 'a': o.val = optarg; break;
      case 'e': o.test = optarg; break;
      case 'o': o.out_dir = optarg; break;
      case 'I': o.train_images = optarg; break;
      case 'P': o.palette = optarg; break;
      case 's': if (parse_long(VERB, "--steps", optarg, 1, 1L << 40, &v)) return EXIT_USAGE; o.steps = v; break;
      case 'b': if (parse_long(VERB, "--batch", optarg, 1, 1 << 16, &v)) return EXIT_USAGE; o.batch = (int)v; break;
      case 'l': if (parse_double(VERB, "--lr", optarg, 1e-12, 10, &o.lr)) return EXIT_USAGE; break;
      case 'i':
        if (!strcmp(optarg, "probe")) head_probe = 1;
        else if (strcmp(optarg, "zero")) return usage_error(VERB, "--head-init is zero or probe, not '%s'", optarg);
        break;
      case 'F': head_features = optarg; break;
      case 'H': if (parse_double(VERB, "--head-lr", optarg, 1e-12, 10, &o.head_lr)) return EXIT_USAGE; break;
      case 'L':
        if (!strcmp(optarg, "clf")) o.clf_only = true;
        else if (strcmp(optarg, "joint")) return usage_error(VERB, "--loss is joint or clf, not '%s'", optarg);
        break;
      case 'w': if (parse_long(VERB, "--warmup", optarg, 0, 1L << 40, &v)) return EXIT_USAGE; o.warmup = v; break;
      case 'W': if (parse_double(VERB, "--weight-decay", optarg, 0, 0.999, &o.weight_decay)) return EXIT_USAGE; break;
      case 'c': if (parse_double(VERB, "--clip", optarg, 0, 1e12, &o.clip)) return EXIT_USAGE; break;
      case 'E': if (parse_long(VERB, "--eval-every", optarg, 1, 1L << 30, &v)) return EXIT_USAGE; o.eval_every = (int)v; break;
      case 'p': if (parse_long(VERB, "--patience", optarg, 1, 1L << 30, &v)) return EXIT_USAGE; o.patience = (int)v; break;
      case 'B': if (parse_long(VERB, "--eval-batch", optarg, 1, 1 << 16, &v)) return EXIT_USAGE; o.eval_batch = (int)v; break;
      case 'D': if (parse_long(VERB, "--pad", optarg, 0, 64, &v)) return EXIT_USAGE; o.pad = (int)v; break;
      case 'S': if (parse_long(VERB, "--seed", optarg, 0, 0x7fffffffffffffffL, &v)) return EXIT_USAGE; o.seed = (uint64_t)v; break;
      case 'r': o.resume = true; break;
      case 'j': json = 1; break;
      case 'q': o.progress = false; break;
      case 'h': usage(stdout, &o); return 0;
      case OPT_DEVICE: device = optarg; break;
      case OPT_PRECISION: precision = optarg; break;
      default: return usage_error(VERB, "unknown option");
    }
  }
  if (optind < argc) return usage_error(VERB, "unexpected argument '%s'", argv[optind]);
  if (!o.model_path || !o.train || !o.val || !o.test || !o.out_dir)
    return usage_error(VERB, "--model, --train, --val, --test and --out are required");
  if (!!o.train_images != !!o.palette) return usage_error(VERB, "--train-images and --palette go together");
  if (head_features && !head_probe) return usage_error(VERB, "--head-features is for --head-init probe");
  int dr = device_flags(VERB, device, precision);
  if (dr) return dr;
  struct stat sb;
  char *mpath = (!stat(o.model_path, &sb) && S_ISDIR(sb.st_mode)) ? xasprintf("%s/model.safetensors", o.model_path)
                                                                   : xstrdup(o.model_path);
  o.model_path = mpath;
  probe_head_opts ph = {.batch = o.eval_batch, .seed = o.seed, .progress = o.progress, .features_dir = head_features};
  if (head_probe) o.head_init = probe_head_init, o.head_init_ctx = &ph, o.head_init_name = "probe";
  json_t *res = NULL;
  int rc = finetune_run(&o, &res);
  free(mpath);
  if (rc) return fail(VERB);
  if (comm_rank() != 0) json_decref(res);  // data parallel: one summary, rank 0's
  else if (json) print_json(res);
  else {
    printf("best validation accuracy %.4f at step %lld; test accuracy there %.4f%s\n",
           json_real_value(json_object_get(res, "best_val_acc")),
           (long long)json_integer_value(json_object_get(res, "best_step")),
           json_real_value(json_object_get(res, "test_acc")),
           json_is_true(json_object_get(res, "stopped_early")) ? " (stopped early)" : "");
    json_decref(res);
  }
  return 0;
}
