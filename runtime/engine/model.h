// model: the Image GPT transformer (REFERENCE.md section 1): its config, its parameters in one
// allocation (tensor-major), official initialisation, forward and backward for the autoregressive
// and BERT objectives with the optional classifier head, the pooled per-layer features, and the
// native model file (safetensors + config JSON in __metadata__["config"]).
//
// The network, as the official code (openai/image-gpt src/model.py) computes it:
//   AR:   h0[:,0] = sos + wpe[0];  h0[:,t] = wte[x[t-1]] + wpe[t]   (t > 0)   position t predicts x[t]
//   BERT: h0[:,t] = (1 - M[t]) * wte[x[t]] + wpe[t]   (no sos, no causal mask; M[t]=1: masked)
//   block l:  h += attn(norm(h; g1_l)) ;  h += W2 gelu2(W1 norm(h; g2_l))
//   logits = norm(h; g_f) @ wtet^T        norm(x; g) = x * rsqrt(mean(x^2) + 1e-5) * g
//   L_gen: AR mean cross-entropy over all positions; BERT mean over masked positions per example,
//          then over the examples that have at least one (the official code divides by zero there).
//   classifier: logits_clf = mean_t(norm(h; g_f)) @ wclf^T ;  loss = L_gen + L_clf.
// Note: the official BERT model has no sos vector (the `sos` tensor is absent for objective bert).
//
// Weights are stored [out, in] (y = x @ W^T, as llm.c); importers transpose HF's Conv1D [in, out].
// Dimension letters: B batch, T positions, C n_embd, V n_vocab, L n_layer, NH n_head, K n_classes.
//
// Sampling (AR) uses model_decode below: one position at a time with a KV cache, each step the
// same computation as the forward's row at that position.
//
// Backends (engine/device.h): the passes call the ops through the model's backend table, once,
// for either device. m->params is the host copy (what files are read into and written from); on
// the CPU the backend's buffers are the same memory. On a GPU the parameters, gradients and
// activations live in device memory: host changes to m->params reach it at the next pass (a new,
// initialised or loaded model) or with model_push; optimizer steps reach m->params with
// model_pull (model_save pulls); outputs are read on the host through the accessors below.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/rng.h"
#include "kernels/backend.h"
#include "base/safetensors.h"

typedef enum { OBJ_AR = 0, OBJ_BERT = 1 } model_objective;

typedef struct {
  int n_layer;        // L
  int n_embd;         // C, divisible by n_head
  int n_head;         // NH
  int n_ctx;          // max positions (rows of wpe)
  int n_vocab;        // V: palette size (512 official); sos is a separate vector, not a row
  bool bias;          // false: official (no biases); true: HF layout with biases on every linear
  model_objective objective;  // ar | bert
  double mask_prob;   // BERT: probability that a position is masked (0.15)
  int n_classes;      // K: classifier classes, 0 = no classifier head
} model_config;

// Defaults for the optional fields: bias false, objective ar, mask_prob 0.15, n_classes 0.
void model_config_default(model_config *c);
// Checks ranges and divisibility. 0 or -1 with igpt_err naming `where` and the field.
int model_config_validate(const model_config *c, const char *where);
// Parses config JSON text {"n_layer":..,"n_embd":..,"n_head":..,"n_ctx":..,"n_vocab":..,
// "bias":false,"objective":"ar","mask_prob":0.15,"n_classes":0}; unknown keys are an error.
// `where` (a file name) prefixes every message. 0 or -1.
int model_config_parse(const char *json, const char *where, model_config *c);
int model_config_load(const char *path, model_config *c);  // reads a JSON file
char *model_config_dump(const model_config *c);            // compact JSON, caller frees

// The parameter tensors, in their order in the one allocation (tensor-major: a per-layer kind is
// one tensor [L, ...] holding every layer). Absent ones (biases when !bias, sos for BERT, wclf
// when n_classes = 0) have numel 0 and NULL pointers.
typedef enum {
  P_WTE,        // wte          [V, C]
  P_WPE,        // wpe          [n_ctx, C]
  P_SOS,        // sos          [C]            (AR only)
  P_LN1_G,      // h.ln_1.g     [L, C]
  P_QKV_W,      // h.attn.c_attn.w [L, 3C, C]  rows: q (C) | k (C) | v (C); head h = rows h*hd..
  P_QKV_B,      // h.attn.c_attn.b [L, 3C]     (bias only)
  P_ATTPROJ_W,  // h.attn.c_proj.w [L, C, C]
  P_ATTPROJ_B,  // h.attn.c_proj.b [L, C]      (bias only)
  P_LN2_G,      // h.ln_2.g     [L, C]
  P_FC_W,       // h.mlp.c_fc.w [L, 4C, C]
  P_FC_B,       // h.mlp.c_fc.b [L, 4C]        (bias only)
  P_FCPROJ_W,   // h.mlp.c_proj.w [L, C, 4C]
  P_FCPROJ_B,   // h.mlp.c_proj.b [L, C]       (bias only)
  P_LNF_G,      // ln_f.g       [C]
  P_WTET,       // wtet         [V, C]         output head, untied, zero init
  P_WCLF,       // clf.wclf     [K, C]         classifier, zero init (n_classes > 0)
  P_NTENSORS
} model_param_id;

typedef struct {
  const char *name;   // native name (as in model files)
  int ndim;
  int64_t shape[3];
  size_t numel;       // 0 when absent
  size_t offset;      // in floats from the start of the allocation
  bool per_layer;     // shape[0] is L
} model_tensor_info;

// The layout for a config without allocating (optimizer state, all-reduce, checkpoints).
// Returns the total number of floats.
size_t model_param_layout(const model_config *c, model_tensor_info info[P_NTENSORS]);

// Activations of the last forward pass (llm.c style, each [..] in floats). Per-layer ones hold
// L layers when the forward kept them for backward, else one layer reused.
typedef struct {
  float *encoded;   // [B,T,C]  h0 (HF hidden_0)
  float *ln1;       // [L,B,T,C] norm(h; g1) = the attention input
  float *ln1_rstd;  // [L,B,T]
  float *qkv;       // [L,B,T,3C]
  float *atty;      // [L,B,T,C] attention output before the projection
  float *att;       // [L,B,NH,T,T] softmax probabilities
  float *attproj;   // [L,B,T,C]
  float *res2;      // [L,B,T,C] h after the attention residual
  float *ln2;       // [L,B,T,C]
  float *ln2_rstd;  // [L,B,T]
  float *fch;       // [L,B,T,4C] before gelu2
  float *fch_gelu;  // [L,B,T,4C]
  float *fcproj;    // [L,B,T,C]
  float *res3;      // [L,B,T,C] h after block l (HF hidden_{l+1} for l < L-1)
  // att holds backend->attention_floats(B, NH, T, grad) floats a layer (NULL when 0)
  float *lnf;       // [B,T,C]   final norm output (HF hidden_L)
  float *lnf_rstd;  // [B,T]
  float *logits;    // [B,T,V]
  float *probs;     // [B,T,V]   softmax(logits), for backward
  float *losses;    // [B,T]     per-position cross-entropy (nats); 0 where not counted
  float *loss_w;    // [B,T]     each position's weight in loss_gen (AR 1/count; BERT per example)
  float *pooled;    // [L+1,B,C] features: l < L mean_t ln1[l]; l = L mean_t lnf
  float *clf_logits;// [B,K]
  float *clf_probs; // [B,K]
  float *clf_losses;// [B]
  float *clf_w;     // [B]       1/B with labels, else 0
} model_acts;

// One batch. tokens u16 [B,T] (T <= n_ctx). In AR, tokens[b,t] == MODEL_IGNORE means "no target
// at t" (not counted in the loss; only valid at t = T-1 since it would be an input elsewhere).
#define MODEL_IGNORE 0xFFFFu
typedef struct {
  const uint16_t *tokens;  // [B,T]
  const uint8_t *mask;     // [B,T] BERT mask, 1 = masked; required for bert, NULL for ar
  const int32_t *labels;   // [B] classifier labels in [0, K) or NULL (no classification loss)
  int B, T;
  bool grad;               // keep every layer's activations so model_backward can run
  bool head;               // compute logits and the generative loss (false: features only)
} model_batch;

typedef struct {
  model_config cfg;
  model_tensor_info info[P_NTENSORS];
  size_t n_params;          // floats in params (and grads)
  float *params;            // the one allocation
  float *grads;             // mirrors params; NULL until the first model_zero_grad/backward
  float *param[P_NTENSORS]; // pointers into params (NULL when absent)
  float *grad[P_NTENSORS];  // pointers into grads
  // last forward
  model_acts acts;
  float *acts_memory, *grad_acts_memory;
  size_t acts_cap, grad_acts_cap;  // floats allocated
  int B, T, layers_kept;            // shape of the last forward; L or 1
  bool have_grad_batch;             // last forward kept activations and computed the loss
  model_batch batch;                // borrowed pointers of the last forward (valid until backward)
  float loss, loss_gen, loss_clf;   // last forward (loss = loss_gen + loss_clf)
  int n_targets;                    // positions counted in loss_gen
  uint16_t *clf_tgt;                // [B] labels as the cross-entropy kernel takes them (host)
  // the backend (engine/device.h) and its copies; on the CPU bparams == params, bgrads == grads
  const backend *be;
  float *bparams, *bgrads;            // [n_params] on the backend
  float *bparam[P_NTENSORS], *bgrad[P_NTENSORS];
  bool host_newer;                    // m->params changed since the backend's copy was made
  bool backend_newer;                 // the backend's parameters changed since m->params was
  size_t att_floats;                  // per layer, of the last forward
  const uint16_t *be_tokens, *be_clf_tgt;  // the last batch's inputs where the backend reads them
  const uint8_t *be_mask;
  void *be_inputs;                    // their device buffer (non-host backends)
  size_t be_inputs_cap;
  float *host_tmp;                    // host scratch of values made on the host (loss weights)
  size_t host_tmp_cap;
  float *host_out[6];                 // host copies of outputs read through the accessors
  size_t host_out_cap[6];
} model;

// A model with the config's layout, parameters zero (use model_init or model_load), on the
// process's backend (device_current()). NULL on an invalid config or when the backend has no
// memory for the parameters (igpt_err). Free with model_free.
model *model_new(const model_config *c);
model *model_new_on(const model_config *c, const backend *be);  // on a given backend
// The host copy's changes to the backend now (model_new, model_init and model_load mark the host
// copy newer, so the next pass pushes by itself; call this after changing m->params later).
void model_push(model *m);
// The backend's parameters into m->params (after optimizer steps); nothing on the CPU.
void model_pull(model *m);
// The gradients into m->grads (allocated here on a GPU backend); nothing on the CPU.
void model_pull_grads(model *m);
// Layer l's slice of tensor p in a tensor-major buffer laid out as m's parameters (base: the host
// copy's or the backend's parameters or gradients); base itself for a tensor not per layer.
float *model_slice(const model *m, float *base, model_param_id p, int l);
void model_free(model *m);
// Official initialisation (REFERENCE.md 1): wte N(0,.02), wpe N(0,.01), sos N(0,.02), q/k/v
// N(0,1/sqrt(C)), attn proj N(0,1/sqrt(C*L)), mlp N(0,.02), gains 1, biases, wtet and wclf 0.
// Deterministic in seed (rng stream "init").
void model_init(model *m, uint64_t seed);

static inline float *model_param(model *m, model_param_id p) { return m->param[p]; }
// Layer l's slice of a per-layer tensor (params or, with grads = true, grads).
float *model_layer(model *m, model_param_id p, int l, bool grads);

// Forward pass. 0, or -1 on bad input (token outside the palette, T > n_ctx, missing mask or
// labels out of range) with igpt_err. Sets loss fields when b->head (or labels) is given.
int model_forward(model *m, const model_batch *b);
void model_zero_grad(model *m);  // allocates grads on first use
// grads += d loss / d params for the last forward (which needs grad = true and head = true or
// labels). -1 with igpt_err when there is no such forward.
int model_backward(model *m);

// Outputs of the last forward, on the host (copied from a GPU at each call; valid until the next
// pass or the next call of the same accessor).
const float *model_logits(const model *m);        // [B,T,V]
const float *model_features(const model *m);      // [L+1,B,C]
const float *model_clf_logits(const model *m);    // [B,K]
const float *model_losses(const model *m);        // [B,T] per-position cross-entropy
const float *model_loss_weights(const model *m);  // [B,T] each position's weight in loss_gen
// h_l [B,T,C]: l = 0 the embeddings, l > 0 block l-1's output (a grad forward keeps every layer;
// otherwise only l = 0 and l = L).
const float *model_hidden(const model *m, int l);

// BERT mask: each of B*T positions masked (1) independently with probability p, from rng.
void model_bert_mask(rng_t *rng, uint8_t *mask, int B, int T, double p);

// Native model file: every present tensor as F32 under its native name, the config JSON in
// __metadata__["config"]. Save is atomic. Load checks every tensor's dtype and shape against the
// config and reports the file and tensor on any mismatch, a missing tensor or an unexpected one.
int model_save(const model *m, const char *path);
// The same, recording the optimizer step the weights are at (__metadata__["step"]; step < 0:
// none), so a kept checkpoint says where in training it was taken.
int model_save_at(const model *m, const char *path, long long step);
model *model_load(const char *path);
// Every parameter finite: 0, else -1 naming path, the tensor (and its layer) and the element.
// model_load refuses a file that fails it, so no verb computes on NaN weights.
int model_check_finite(const model *m, const char *path);
// The same from a safetensors file already open (fuzzing, files in memory); f stays open.
model *model_from_st(const st_file *f);

// ---------------------------------------------------------------- incremental decoding (AR)
// A key/value cache for B sequences decoded together, one position per model_decode call.
typedef struct {
  int B, len, cap;        // sequences, positions filled, capacity (n_ctx)
  const backend *be;      // the model's; every buffer below is its memory
  float *k, *v;           // [L, B, NH, cap, C/NH]
  float *x, *ln, *qkv, *atty, *proj, *fch, *fch_gelu, *scores;  // one position's scratch
  float *logits;          // [B, V] (non-host backends; the CPU writes the caller's array)
  uint16_t *prev;         // [B] the fed tokens (non-host backends)
} model_kv;

// NULL with igpt_err when the backend has no memory for the cache.
model_kv *model_kv_new(const model *m, int B);
void model_kv_free(model_kv *kv);
static inline void model_kv_reset(model_kv *kv) { kv->len = 0; }
// Feeds position t = kv->len of every sequence (sos when t = 0, else prev[b], the token at
// position t-1) and writes logits [B, V] for the token at position t; kv->len becomes t+1.
// -1 with igpt_err when the cache is full (t = n_ctx), a token is outside the palette, or the
// model is BERT. The logits equal model_forward's at position t (to float rounding).
int model_decode(model *m, model_kv *kv, const uint16_t *prev, float *logits);
