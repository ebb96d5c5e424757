// igpt import: other frameworks' iGPT weights into a native model file: HuggingFace ImageGPT
// (safetensors, interop/hf.h; or its PyTorch pytorch_model.bin, interop/torch_bin.h) and OpenAI's
// released TensorFlow checkpoints (interop/tf_igpt.h).
#include "cli/cli.h"
#include "interop/hf.h"
#include "interop/tf_igpt.h"
#include "interop/torch_bin.h"
#include "base/util.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
  printf("usage: igpt import --from hf DIR --out M.safetensors [--drop-zero-biases] [--json]\n"
         "       igpt import --from torch DIR/pytorch_model.bin --out M.safetensors [--drop-zero-biases] [--json]\n"
         "       igpt import --from tf DIR|PREFIX|PREFIX.index --out M.safetensors [--json]\n\n"
         "--from hf: HuggingFace ImageGPT weights: DIR/config.json and DIR/model.safetensors (float32;\n"
         "ImageGPTForCausalImageModeling, or ImageGPTForImageClassification's score.weight as the\n"
         "classifier). Conv1D weights are transposed to [out, in], c_attn keeps q|k|v, wte's last row\n"
         "becomes the sos vector, lm_head the output head. The native model keeps HF's biases\n"
         "(config bias true) unless --drop-zero-biases finds them all zero (converted official\n"
         "weights): then it gets the official layout without biases.\n"
         "--from torch: the same weights as HF hub's PyTorch file (torch.save's zip, config.json beside it),\n"
         "read without Python: only float32 tensors of torch's _rebuild_tensor_v2; any other pickled\n"
         "callable is refused.\n"
         "--from tf: OpenAI's released checkpoints (openai/image-gpt: igpt-{s,m,l}[-bert]), TensorFlow V2\n"
         "bundles read without TensorFlow: a directory (its `checkpoint` file names the checkpoint, else\n"
         "its one *.index), or PREFIX (PREFIX.index + PREFIX.data-*-of-*). The config comes from the\n"
         "shapes; a checkpoint without model/sos is a BERT one. Only the model's 4 + 8L + 1 tensors are\n"
         "read (each shard once, every tensor's crc32c checked); optimizer state is skipped and counted.\n"
         "Progress per shard on stderr.\n"
         "  --json  print {\"out\",\"n_params\",\"config\"} (tf: also \"tensors\", \"skipped\") on stdout\n");
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
  bool tf = from && !strcmp(from, "tf"), torch = from && !strcmp(from, "torch");
  if (!from || (strcmp(from, "hf") && !tf && !torch))
    return usage_error("import", "--from hf, --from torch or --from tf is required");
  if (optind != argc - 1)
    return usage_error("import", "expected one %s argument", tf ? "checkpoint" : torch ? "pytorch_model.bin" : "DIR");
  if (!out) return usage_error("import", "--out is required");
  if (tf && drop) return usage_error("import", "--drop-zero-biases is for --from hf (TF checkpoints have no biases)");
  tf_import_stats st = {0};
  model *m = tf ? tf_import(argv[optind], &st, true)
               : torch ? torch_import(argv[optind], drop) : hf_import(argv[optind], drop);
  if (!m) return fail("import");
  if (model_save(m, out)) {
    model_free(m);
    return fail("import");
  }
  log_info("imported %s -> %s (%zu parameters, bias %s)", argv[optind], out, m->n_params,
           m->cfg.bias ? "true" : "false");
  if (json) {
    char *cfg = model_config_dump(&m->cfg);
    json_t *r = json_pack("{s:s, s:I, s:o}", "out", out, "n_params", (json_int_t)m->n_params, "config",
                          json_loads(cfg, JSON_REJECT_DUPLICATES, NULL));
    if (tf) {
      json_object_set_new(r, "tensors", json_integer(st.n_model));
      json_object_set_new(r, "skipped", json_pack("{s:i, s:I}", "tensors", st.n_skipped, "bytes",
                                                  (json_int_t)st.skipped_bytes));
    }
    print_json(r);
    free(cfg);
  }
  model_free(m);
  return 0;
}
