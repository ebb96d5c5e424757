// igpt prepare: the verb over datasets/prepare.h (options, checks of their combinations, --json).
#include "cli/cli.h"
#include "datasets/prepare.h"
#include "base/util.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *o) {
  fprintf(o,
          "usage: igpt prepare NAME [--data DIR] [--size 16|32|48|64] [--out DIR] [--seed S] [--n-train N] [--n-test N]\n"
          "                    [--registry FILE] [--force] [--json]\n"
          "       igpt prepare stl10 --unlabeled [...]\n"
          "       igpt prepare synthetic [--n-train N] [--n-test N] [--seed S] [--size N]\n\n"
          "Decodes a fetched data set from DIR/downloads/NAME/ (DIR: --data, else $IGPT_DATA, else ./data),\n"
          "centre-crops to a square, resizes with area (box) weights, holds out a class-stratified random\n"
          "validation split of train (10%% for CIFAR, STL-10, Fashion-MNIST and synthetic, 4%% for ImageNet;\n"
          "--val-fraction F"
          " overrides), and writes DIR/prepared/NAME-SIZE/{train,val,test}.safetensors and meta.json\n"
          "(classes, source digests, split, seed, label counts) atomically. A rerun with the same settings\n"
          "finds the work done; --force rebuilds.\n\n"
          "names: cifar10 cifar100 stl10 fashion-mnist synthetic (generated, nothing to fetch),\n"          "       imagenet32 imagenet64 (the manually downloaded zips; val_data is the test split),\n"
          "       igpt-cifar10 igpt-imagenet (official pre-quantised .npy: tokens files, their own split)\n"
          "options:\n"
          "  --size N          32, 48 or 64 (default 32), or 16 (the smoke scale's small images); igpt-* are 32\n"
          "                    only; synthetic is drawn at N\n"
          "  --seed S          seed of the split and of the synthetic images (default 0)\n"
          "  --out DIR         output directory instead of DIR/prepared/NAME-SIZE\n"
          "  --n-train N, --n-test N   synthetic: the set sizes before the split (default 5000, 1000); other sets:\n"
          "                    keep only the first N train and test images of the source files (default all);\n"
          "                    N train is counted before the validation split, which is then taken out of\n"
          "                    them (train + val = N; meta.json's \"subset\" says so)\n"
          "  --registry FILE   the registry the files are checked against (size, sha256; default: the\n"
          "                    checkout's datasets/registry.json, or $IGPT_REGISTRY)\n"
          "  --unlabeled       stl10: also unlabeled_X.bin (100000 images, labels -1) to unlabeled.safetensors\n"
          "  --json            print the result (output, counts per split and class) on stdout\n");
}

int cmd_prepare(int argc, char **argv) {
  static const struct option opts[] = {
      {"data", 1, 0, 'd'}, {"size", 1, 0, 's'}, {"out", 1, 0, 'o'}, {"seed", 1, 0, 'S'},
      {"n-train", 1, 0, 'n'}, {"n-test", 1, 0, 't'}, {"val-fraction", 1, 0, 'v'}, {"force", 0, 0, 'f'},
      {"json", 0, 0, 'j'}, {"unlabeled", 0, 0, 'u'}, {"registry", 1, 0, 'r'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  const char *data = getenv("IGPT_DATA"), *out = NULL, *registry = NULL;
  long size = 32, n_train = 0, n_test = 0;  // 0: the defaults below
  double frac = -1;
  unsigned long long seed = 0;
  int force = 0, as_json = 0, unlabeled = 0, opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    long v;
    switch (opt) {
      case 'd': data = optarg; break;
      case 'o': out = optarg; break;
      case 's':
        if (parse_long("prepare", "--size", optarg, 16, 64, &size)) return EXIT_USAGE;
        if (size != 16 && size != 32 && size != 48 && size != 64)
          return usage_error("prepare", "--size wants 16, 32, 48 or 64, got %ld", size);
        break;
      case 'S': if (parse_long("prepare", "--seed", optarg, 0, 0x7fffffffL, &v)) return EXIT_USAGE; seed = (unsigned long long)v; break;
      case 'n': if (parse_long("prepare", "--n-train", optarg, 10, 10000000, &n_train)) return EXIT_USAGE; break;
      case 't': if (parse_long("prepare", "--n-test", optarg, 10, 10000000, &n_test)) return EXIT_USAGE; break;
      case 'v': if (parse_double("prepare", "--val-fraction", optarg, 0, 0.9, &frac)) return EXIT_USAGE; break;
      case 'f': force = 1; break;
      case 'j': as_json = 1; break;
      case 'u': unlabeled = 1; break;
      case 'r': registry = optarg; break;
      case 'h': usage(stdout); return 0;
      default: return usage_error("prepare", "unknown option");
    }
  }
  if (optind != argc - 1) return usage_error("prepare", "wants exactly one data set NAME");
  const char *name = argv[optind];
  prepare_kind kind = prepare_kind_of(name);
  if (kind == PREPARE_UNKNOWN) return usage_error("prepare", "unknown data set '%s' (see --help for the names)", name);
  if (kind == PREPARE_TOKENS && size != 32)
    return usage_error("prepare", "%s is 32x32 only", name);
  if (kind == PREPARE_TOKENS && (n_train || n_test))
    return usage_error("prepare", "--n-train/--n-test do not apply to %s", name);
  if (unlabeled && strcmp(name, "stl10")) return usage_error("prepare", "--unlabeled is for stl10 only");

  prepare_opts o = {.name = name, .data = data, .out = out, .size = (int)size, .n_train = n_train,
                    .n_test = n_test, .val_fraction = frac, .seed = seed, .force = force, .unlabeled = unlabeled,
                    .registry = registry};
  json_t *result = NULL;
  if (prepare_dataset(&o, &result) != 0) return fail("prepare");
  if (as_json) print_json(result);
  else json_decref(result);
  return 0;
}
