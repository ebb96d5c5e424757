// igpt export: a native model file to HuggingFace ImageGPT layout (model.safetensors and
// config.json in a directory; interop/hf.h) or to the released iGPT checkpoints' TensorFlow
// bundle layout (interop/tf_igpt.h: stand-in checkpoints and round trips).
#include "cli/cli.h"
#include "interop/hf.h"
#include "interop/tf_igpt.h"
#include "base/util.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(void) {
  printf("usage: igpt export --to hf M.safetensors --out DIR\n"
         "       igpt export --to tf M.safetensors --out PREFIX [--shards N] [--step S]\n\n"
         "--to hf: writes DIR/model.safetensors and DIR/config.json in HuggingFace ImageGPT's layout (the\n"
         "sos vector as wte's last row, Conv1D weights [in, out], zero biases for an official-layout\n"
         "model, score.weight when the model has a classifier). Autoregressive models only: HF has\n"
         "no BERT ImageGPT. import then export gives the same tensors bit for bit.\n"
         "--to tf: writes PREFIX.index and PREFIX.data-0000S-of-0000N in the layout of OpenAI's released\n"
         "checkpoints (model/wte, model/h0/attn/q_proj, ...; global_step S in shard 0, the weights over the\n"
         "other N-1 shards, default N 2), for stand-in checkpoints: official layout only (no biases, no\n"
         "classifier); a BERT model has no model/sos. `igpt import --from tf PREFIX` reads it back.\n");
}

int cmd_export(int argc, char **argv) {
  static const struct option opts[] = {{"to", required_argument, 0, 't'}, {"out", required_argument, 0, 'o'},
                                        {"shards", required_argument, 0, 's'}, {"step", required_argument, 0, 'S'},
                                        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *to = NULL, *out = NULL;
  long shards = 2, step = 0;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 't': to = optarg; break;
      case 'o': out = optarg; break;
      case 's': if (parse_long("export", "--shards", optarg, 2, 99999, &shards)) return EXIT_USAGE; break;
      case 'S': if (parse_long("export", "--step", optarg, 0, 1L << 40, &step)) return EXIT_USAGE; break;
      case 'h': usage(); return 0;
      default: return usage_error("export", "unknown option");
    }
  }
  bool tf = to && !strcmp(to, "tf");
  if (!to || (strcmp(to, "hf") && !tf)) return usage_error("export", "--to hf or --to tf is required");
  if (optind != argc - 1) return usage_error("export", "expected one model file argument");
  if (!out) return usage_error("export", "--out is required");
  model *m = model_load(argv[optind]);
  if (!m) return fail("export");
  int rc = tf ? tf_export(m, out, (int)shards, step) : hf_export(m, out);
  model_free(m);
  if (rc) return fail("export");
  if (tf) log_info("exported %s -> %s.{index,data-*-of-%05ld}", argv[optind], out, shards);
  else log_info("exported %s -> %s/{model.safetensors,config.json}", argv[optind], out);
  return 0;
}
