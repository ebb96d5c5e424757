// tf_igpt: OpenAI's released iGPT checkpoints (TensorFlow V2 bundles, tf_bundle.h) <-> the native
// model. The names and layouts are REFERENCE.md section 7's (openai/image-gpt src/model.py):
//   model/wte [V, C], model/wpe [n_ctx, C], model/sos [C] (absent: a BERT checkpoint),
//   model/wtet [V, C], model/ln_f/g [C], and per block l (scope model/h<l>/):
//   ln_1/g, ln_2/g [C]; attn/{q,k,v}_proj [NH, HD, C] = [out, in] (out = h*HD + e): native rows
//   as they are; attn/c_proj [NH, HD, C] = [in, out]: transposed; mlp/c_fc/w [C, 4C] and
//   mlp/c_proj/w [4C, C] are [in, out]: transposed. No biases.
// The config comes from the shapes (C and V from wte, n_ctx from wpe, NH and HD from h0's q_proj,
// L from the block scopes); every other tensor (Adam moments, step counters) is skipped and
// counted. Only the weights are read, each shard once in offset order, straight into the model's
// one allocation, so memory stays near the weights' size (iGPT-L: 5.4 GB of a 16 GB bundle).
#pragma once
#include "engine/model.h"
#include "interop/tf_bundle.h"

typedef enum { TFI_PLAIN, TFI_TRANSPOSE } tfi_kind;

// One checkpoint tensor and where it lives in the native model.
typedef struct {
  char name[64];       // e.g. "model/h3/attn/q_proj"
  model_param_id p;    // native tensor
  int layer;           // block of a per-layer tensor, else -1
  int part;            // q/k/v: which third of the native c_attn rows (0, 1, 2), else 0
  tfi_kind kind;
  int ndim;
  int64_t shape[3];    // checkpoint shape
} tf_igpt_tensor;

// The checkpoint tensors of a config (official layout: bias false). Caller frees *out; returns
// the count (4 + 8L + 1 for AR, one fewer for BERT).
int tf_igpt_tensors(const model_config *c, tf_igpt_tensor **out);

typedef struct {
  int n_model;               // tensors imported
  int n_skipped;             // tensors not in the model (optimizer state, counters)
  uint64_t skipped_bytes;
} tf_import_stats;

// Imports the bundle at path (a directory, PREFIX or PREFIX.index; tf_bundle_resolve). Messages
// name the file and tensor: a missing model tensor, a dtype other than DT_FLOAT, a shape that
// does not fit the others, and every error of tf_bundle_open/tf_bundle_read. stats may be NULL.
model *tf_import(const char *path, tf_import_stats *stats, bool verbose);
// Writes the model's weights as an iGPT checkpoint at prefix: global_step in shard 0, the
// weights over shards 1..num_shards-1 (as the released ones: shard 0 only scalars). Official
// layout only (no biases, no classifier); prefix's directory is created. Stand-in checkpoints and
// round trips.
int tf_export(const model *m, const char *prefix, int num_shards, int64_t global_step);
