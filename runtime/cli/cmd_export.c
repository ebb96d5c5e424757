// igpt export: a native model file to HuggingFace ImageGPT layout (model.safetensors and
// config.json in a directory). See hf.h for the mapping.
#include "cli/cli.h"
#include "interop/hf.h"
#include "base/util.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(void) {
  printf("usage: igpt export --to hf M.safetensors --out DIR\n\n"
         "Writes DIR/model.safetensors and DIR/config.json in HuggingFace ImageGPT's layout (the sos\n"
         "vector as wte's last row, Conv1D weights [in, out], zero biases for an official-layout\n"
         "model, score.weight when the model has a classifier). Autoregressive models only: HF has\n"
         "no BERT ImageGPT. import then export gives the same tensors bit for bit.\n");
}

int cmd_export(int argc, char **argv) {
  static const struct option opts[] = {{"to", required_argument, 0, 't'}, {"out", required_argument, 0, 'o'},
                                        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *to = NULL, *out = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 't': to = optarg; break;
      case 'o': out = optarg; break;
      case 'h': usage(); return 0;
      default: return usage_error("export", "unknown option");
    }
  }
  if (!to || strcmp(to, "hf")) return usage_error("export", "--to hf is required (the only target format)");
  if (optind != argc - 1) return usage_error("export", "expected one model file argument");
  if (!out) return usage_error("export", "--out is required");
  model *m = model_load(argv[optind]);
  if (!m) return fail("export");
  int rc = hf_export(m, out);
  model_free(m);
  if (rc) return fail("export");
  log_info("exported %s -> %s/{model.safetensors,config.json}", argv[optind], out);
  return 0;
}
