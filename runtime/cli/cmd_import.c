// igpt import: HuggingFace ImageGPT weights (a directory with config.json and model.safetensors)
// into a native model file. See hf.h for the mapping.
#include "cli/cli.h"
#include "interop/hf.h"
#include "base/util.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
  printf("usage: igpt import --from hf DIR --out M.safetensors [--drop-zero-biases] [--json]\n\n"
         "Imports HuggingFace ImageGPT weights: DIR/config.json and DIR/model.safetensors (float32;\n"
         "ImageGPTForCausalImageModeling, or ImageGPTForImageClassification's score.weight as the\n"
         "classifier). Conv1D weights are transposed to [out, in], c_attn keeps q|k|v, wte's last row\n"
         "becomes the sos vector, lm_head the output head. The native model keeps HF's biases\n"
         "(config bias true) unless --drop-zero-biases finds them all zero (converted official\n"
         "weights): then it gets the official layout without biases.\n"
         "  --json  print {\"out\",\"n_params\",\"config\"} on stdout\n");
}

int cmd_import(int argc, char **argv) {
  static const struct option opts[] = {{"from", required_argument, 0, 'f'}, {"out", required_argument, 0, 'o'},
                                        {"drop-zero-biases", no_argument, 0, 'z'}, {"json", no_argument, 0, 'j'},
                                        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *from = NULL, *out = NULL;
  int drop = 0, json = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'f': from = optarg; break;
      case 'o': out = optarg; break;
      case 'z': drop = 1; break;
      case 'j': json = 1; break;
      case 'h': usage(); return 0;
      default: return usage_error("import", "unknown option");
    }
  }
  if (!from || strcmp(from, "hf")) return usage_error("import", "--from hf is required (the only source format)");
  if (optind != argc - 1) return usage_error("import", "expected one DIR argument");
  if (!out) return usage_error("import", "--out is required");
  model *m = hf_import(argv[optind], drop);
  if (!m) return fail("import");
  if (model_save(m, out)) {
    model_free(m);
    return fail("import");
  }
  log_info("imported %s -> %s (%zu parameters, bias %s)", argv[optind], out, m->n_params,
           m->cfg.bias ? "true" : "false");
  if (json) {
    char *cfg = model_config_dump(&m->cfg);
    print_json(json_pack("{s:s, s:I, s:o}", "out", out, "n_params", (json_int_t)m->n_params, "config",
                         json_loads(cfg, JSON_REJECT_DUPLICATES, NULL)));
    free(cfg);
  }
  model_free(m);
  return 0;
}
