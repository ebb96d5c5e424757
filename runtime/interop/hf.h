// hf: HuggingFace ImageGPT weights <-> the native model. HF's layout: Conv1D weights [in, out]
// (native: [out, in]), c_attn = q|k|v along its output axis (native: the same order along rows),
// `transformer.wte.weight` [V+1, C] with sos as row V, `lm_head.weight` [V, C] without bias,
// biases on every Conv1D, optional `score.weight` [K, C] (ImageGPTForImageClassification).
// config.json: n_layer, n_embd, n_head, n_positions (n_ctx), vocab_size (V+1), quick_gelu, eps 1e-5.
#pragma once
#include "base/safetensors.h"
#include "engine/model.h"

typedef enum { HF_PLAIN, HF_TRANSPOSE, HF_WTE_SOS } hf_kind;

// One HF tensor and where it lives in the native model.
typedef struct {
  char name[64];       // HF name, e.g. "transformer.h.3.attn.c_attn.weight"
  model_param_id p;    // native tensor
  int layer;           // layer of a per-layer tensor, else -1
  hf_kind kind;
  int ndim;
  int64_t shape[2];    // HF shape
} hf_tensor;

// The HF tensors of a native config (AR only: HF has no BERT ImageGPT). Biases are listed even
// when the native model has none (they export as zeros). Caller frees *out. Returns the count.
int hf_tensors(const model_config *c, hf_tensor **out);
// Copies one HF tensor (HF layout, numel = shape product) out of the model's params or grads,
// or into the model's params. A bias the native model lacks reads as zeros / must be zero.
void hf_tensor_get(const model *m, bool grads, const hf_tensor *t, float *out);
int hf_tensor_set(model *m, const hf_tensor *t, const float *in);  // -1: nonzero absent bias

// Reads DIR/config.json (Jansson) into a native config (bias true, objective ar); n_classes from
// the caller. Messages name the file and field.
int hf_config_load(const char *dir, model_config *c);
// Imports DIR/{config.json,model.safetensors}. drop_zero_biases: when every bias is exactly
// zero (converted official weights), the native model gets the official layout without biases.
model *hf_import(const char *dir, bool drop_zero_biases);
// The same from tensors already at hand (f->path names them in messages; a PyTorch file's, see
// torch_bin.h), with DIR/config.json. f stays the caller's.
model *hf_import_tensors(const char *dir, const st_file *f, bool drop_zero_biases);
// Writes DIR/model.safetensors and DIR/config.json (each atomically), creating DIR.
int hf_export(const model *m, const char *dir);
