// finetune: the paper's fine-tuning: the classifier head on the mean-pooled final norm
// (model.h), loss = L_gen + L_clf, AdamW (b1 0.9, b2 0.95) with warmup + cosine, optional
// augmentation of the training images before tokenizing (augment.h + the palette), validation
// accuracy every few steps with early stopping, the test accuracy at the best validation step
// (step 0, the head before any step, counts: a head started from the probe can already be best).
// Resumable like pretraining: DIR/model.safetensors + DIR/state.safetensors (checkpoint.h), the
// fine-tune's own progress (batch RNG, best step, evaluations) inside the state's options so a
// kill at any point resumes to the same result; DIR/best.safetensors is the best model.
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "engine/model.h"

// A labelled set as the fine-tune holds it (borrowed views into its mapped files).
typedef struct {
  const uint16_t *tokens;  // [N, T]
  const int32_t *labels;   // [N]
  int64_t N, T;
} finetune_set;

// Sets the classifier head of m (P_WCLF [K, C], host copy; the caller pushes it) from the
// pretrained body before step 0 of a fresh run. 0, or -1 with igpt_err.
typedef int (*finetune_head_init)(model *m, const finetune_set *train, const finetune_set *val, void *ctx);

typedef struct {
  const char *model_path;          // pretrained model (a classifier head is added when absent)
  const char *train, *val, *test;  // tokens files with labels
  const char *train_images;        // optional: images U8 [N,H,W,3] aligned with train, augmented
  const char *palette;             //   with the palette that made the tokens (both or neither)
  const char *out_dir;
  int64_t steps;                   // optimizer steps at most
  int batch;                       // sequences per step (drawn uniformly with replacement)
  double lr;                       // peak learning rate (the paper: ~10x below pretraining)
  double head_lr;                  // the classifier head's peak rate (<= 0: lr): a zero-initialised
                                   // head at the body's small rate learns too slowly at small scale
  int64_t warmup;                  // linear warmup steps
  bool clf_only;                   // loss = L_clf alone (the paper's alternative), not L_gen + L_clf
  double weight_decay, clip;
  int eval_every;                  // steps between validation evaluations (and checkpoints)
  int patience;                    // stop after this many evaluations without a better one
  int eval_batch;
  int pad;                         // augmentation padding (4)
  uint64_t seed;
  bool resume, progress;
  // Optional: the head's start instead of zeros ("linear probe, then fine-tune"): the engine only
  // calls it; eval/probe_head.h fits the probe's solution. head_init_name goes into the
  // checkpoint's options (a resume must start the same way).
  finetune_head_init head_init;
  void *head_init_ctx;
  const char *head_init_name;
} finetune_opts;

void finetune_opts_default(finetune_opts *o);
// Runs (or resumes) the fine-tune. *result: best_step, best_val_acc, test_acc, steps_done,
// stopped_early, evaluations [{step, val_acc}], seconds. 0, or -1 with igpt_err.
int finetune_run(const finetune_opts *o, json_t **result);
