// probe: the paper's linear probe on features files (DESIGN.md "Files between verbs"): per layer a
// C sweep on validation with warm starts, the best layer (or a concatenation of layers), refit on
// train+val, accuracy on test; low-data subsets; BERT mask ensembling by the modal prediction.
// The logistic regression itself is logreg.h; the verb is cmd_probe.c.
#pragma once
#include <stdint.h>
#include "eval/logreg.h"
#include "base/rng.h"
#include "base/safetensors.h"

// A features file: layer_<l> F32 [N, d_l] (or [K, N, d_l]: K evaluation masks of a BERT model)
// for l = 0..n_layers-1, and labels I32 [N].
typedef struct {
  st_file st;
  int n_layers;
  int64_t n;
  int masks;                  // K (1 unless BERT features with --masks K)
  int *dims;                  // [n_layers]
  const float **layer;        // [n_layers] -> [masks, n, d] in the mapped file
  const int32_t *labels;      // [n]
} features_file;

int features_open(features_file *ff, const char *path);  // validates everything; -1 + igpt_err
// Every value of every layer finite: 0, else -1 naming the split ("train", "val", "test"), the
// file, the layer, the row and the value. A NaN feature would otherwise score as a class.
int features_check_finite(const features_file *ff, const char *split);
void features_close(features_file *ff);

// Rows of a set of layers concatenated: [masks, n, Σ d]; only the first mask when first_mask_only.
// rows (optional, n_rows of them) picks and orders rows. Caller frees.
float *features_gather(const features_file *ff, const int *layers, int n_layers, int first_mask_only,
                       const int64_t *rows, int64_t n_rows, int *d_out);

// Standardisation as sklearn's StandardScaler: mean and population std per column of x [n, d]
// (a zero std counts as 1), then applied in place to any set.
void standardize_fit(const float *x, int64_t n, int d, double *mean, double *scale);
void standardize_apply(float *x, int64_t n, int d, const double *mean, const double *scale);

// The modal class per row over K predictions pred [K, n] of k classes; ties broken uniformly at
// random from r. out [n].
void ensemble_mode(const int32_t *pred, int K, int64_t n, int k, rng_t *r, int32_t *out);
// Accuracy of θ on x [K, n, d]: the plain accuracy for K = 1, the modal prediction's for K > 1
// (ties drawn from a stream of seed, so the same call gives the same answer).
double probe_accuracy(const double *theta, int d, int k, const float *x, int K, int64_t n,
                      const int32_t *y, uint64_t seed);
// The same, and right_out[n] (may be NULL) = 1 where row i is classified correctly: the per-image
// outcomes a paired test (McNemar) compares between two probes on the same test set.
double probe_correct(const double *theta, int d, int k, const float *x, int K, int64_t n,
                     const int32_t *y, uint64_t seed, uint8_t *right_out);

// Class-balanced subset: per_class rows of each of the k classes of y [n], drawn without
// replacement from r, returned sorted by row. -1 + igpt_err when a class has fewer rows.
int balanced_subset(const int32_t *y, int64_t n, int k, int per_class, rng_t *r, int64_t *rows);

// One fit of the sweep.
typedef struct {
  double C, val_acc, objective;
  int iterations, evaluations;
  double seconds;
  const char *stop;
} probe_fit;

typedef struct {
  double c_min, c_max;        // the sweep's bounds: its coarse grid is the decades between them
                              // (or both ends when none is), refinements stay inside
  double fixed_C;             // > 0: no sweep, fit at this C only
  const double *Cs;           // n_Cs > 0: fit exactly these, ascending, warm-started in turn
  int n_Cs;
  int refine;                 // refine around the best: half decades, then quarter decades
  int patience;               // stop the coarse grid after this many falls below the best
  int max_iter;
  uint64_t seed;              // ensembling ties
  int no_intercept;           // fits without biases (logreg_opts.no_intercept)
} sweep_opts;

typedef struct {
  probe_fit *fits;            // in the order run
  int n_fits;
  double best_C, best_val_acc;
  double *best_theta;         // [nparams], owned
  int iterations;             // all fits together
  double seconds;
} sweep_result;

sweep_opts sweep_defaults(void);
// Sweeps C on train (x [n, d]), scoring on val (xv [Kv, nv, d]). -1 + igpt_err on failure.
int probe_sweep(const logreg_data *train, const float *xv, int Kv, int64_t nv, const int32_t *yv,
                const sweep_opts *o, sweep_result *res);
void sweep_result_free(sweep_result *res);
