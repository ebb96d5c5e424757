// probe_head: a fine-tune's classifier head started from the linear probe's solution ("linear
// probe, then fine-tune"): the pooled final-norm features that the head reads (featurize.h, layer
// L, the same forward the fine-tune's accuracy uses), the probe's C sweep on them (probe.h) scored
// on validation, without an intercept because the head has no bias. Step 0 of the fine-tune then
// starts at the probe's accuracy instead of chance, and the body's small rate has a trained head
// to work with from the first step. The engine only calls it (finetune_opts.head_init).
// Those features can come from files the table already has (igpt features of the same model on
// the same train and val tokens): their layer L is what the head reads, so the fine-tune skips a
// second forward over both sets.
#pragma once
#include "engine/finetune.h"

typedef struct {
  int batch;        // images per forward pass of the feature extraction
  uint64_t seed;    // the BERT evaluation mask and the probe's ties (the fine-tune's seed)
  int progress;     // progress lines on stderr
  const char *features_dir;  // non-NULL: DIR/train.safetensors and DIR/val.safetensors (igpt
                             // features of this model) give layer L instead of a forward pass;
                             // their rows, labels, width and BERT mask seed must match
} probe_head_opts;

// A finetune_head_init: ctx is a probe_head_opts. Sets m's P_WCLF to the best validation fit's
// weights (the host copy; finetune pushes it) and logs the chosen C and the validation accuracy.
int probe_head_init(model *m, const finetune_set *train, const finetune_set *val, void *ctx);
