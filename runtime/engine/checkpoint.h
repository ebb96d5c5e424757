// checkpoint: a training run's files in its output directory, written so that a kill at any
// instant leaves a resumable pair:
//   DIR/model.safetensors  the weights and config (model_save): what the other verbs read
//   DIR/state.safetensors  Adam's m and v, the step, the data position and both RNG states, the
//                          options a resume must not change, and the SHA-256 of the weights file
//                          it belongs to
// Each file is replaced atomically (temporary + rename). The weights go first; the previous
// weights file stays reachable as DIR/model.prev.safetensors (a hard link, no copy) until the new
// state is in place, so a kill between the two renames resumes from the previous pair, which the
// digest identifies.
#pragma once
#include <jansson.h>
#include <stdint.h>
#include "engine/batcher.h"
#include "engine/model.h"

typedef struct {
  int64_t step;          // optimizer steps done
  batcher_state data;    // data position and RNG streams after `step` steps
  float *m, *v;          // Adam moments [n]
  size_t n;              // n_params of the model
  json_t *options;       // the options fixed for the run (train_options_json); owned
  int threads;           // OpenMP threads of the run that wrote it (bits depend on it)
  bool weights_in_prev;  // the state's weights are model.prev.safetensors (set by checkpoint_load)
} train_state;

// Writes DIR/model.safetensors then DIR/state.safetensors for model m and state s.
int checkpoint_save(const char *dir, const model *m, train_state *s);
// True when DIR holds a state file (a run to resume).
bool checkpoint_exists(const char *dir);
// Loads the latest consistent pair from DIR: the model (returned, caller frees) and the state
// (s->m, s->v allocated, s->options owned by s). NULL with an error naming the file on a missing,
// corrupt or mismatched file.
model *checkpoint_load(const char *dir, train_state *s);
void train_state_free(train_state *s);
