// logreg: multinomial logistic regression with L2, fitted by L-BFGS the way scikit-learn's lbfgs
// solver fits it (same objective, same stopping rules), so its answers agree with sklearn's. The
// line search runs on the logits, O(n k) per trial point (logreg.c says why).
//
// Model: logits z = W x + b, W [K, D], b [K]; p = softmax(z); loss_i = -log p_{y_i}.
// scikit-learn's convention: minimise ½‖W‖² + C·Σ_i loss_i (the bias is not penalised). Like
// sklearn 1.2 the optimiser works on the same problem divided by C, F = Σ_i loss_i + ‖W‖²/(2C),
// and stops when max_j |∂F/∂θ_j| <= tol (sklearn's tol, scipy's gtol), when the relative decrease
// of F is below ftol (scipy's factr 1e7 · machine epsilon), or after max_iter iterations.
//
// Parameters θ are doubles, [K*D] weights row-major then [K] biases (logreg_nparams). The features
// stay float32: logits and gradient are OpenBLAS sgemm calls over blocks of rows; softmax, loss
// and the sums of the objective and gradient are double, over rows in parallel with OpenMP.
#pragma once
#include <stdint.h>

typedef struct {
  int64_t n;           // samples
  int d, k;            // features, classes
  const float *x;      // [n, d] row-major, borrowed
  const int32_t *y;    // [n] in [0, k), borrowed
} logreg_data;

typedef struct {
  double C;            // inverse regularisation strength (sklearn's C)
  double tol;          // max |gradient| of F at the stop (sklearn default 1e-4)
  double ftol;         // relative decrease of F at the stop (scipy default 2.22e-9)
  int max_iter;        // L-BFGS iterations (sklearn default 100; the probe uses 1000)
  int m;               // L-BFGS memory (scipy default 10)
  // Regularisation paths: θ at an earlier C of the path (NULL: none). The fit's first step is
  // then a line search along θ - path_prev from the warm start θ, beginning at path_step (the
  // distance to C in the units of the last path step, log C - log C_near over log C_near -
  // log C_prev): solutions move along a similar line from one C to the next.
  const double *path_prev;
  double path_step;
  // sklearn's fit_intercept=False: the biases stay 0 (θ's bias part is zeroed on entry), for a
  // classifier that has none, as the model's fine-tuning head (eval/probe_head.h). The features
  // are then not centred either: the bias is what absorbs the centring.
  int no_intercept;
} logreg_opts;

typedef struct {
  int iterations;      // L-BFGS iterations taken
  int evaluations;     // objective + gradient evaluations
  double objective;    // ½‖W‖² + C Σ loss at θ (sklearn's C convention)
  double loss_sum;     // Σ loss at θ
  double grad_max;     // max |∂F/∂θ| at θ (F = objective / C)
  double seconds;
  const char *stop;    // "gtol", "ftol", "precision" (no decrease of F is left to find in double
                       // precision), or "max_iter"
  int converged;       // 1 for gtol, ftol and precision, 0 otherwise
} logreg_result;

logreg_opts logreg_defaults(double C);  // sklearn's tol/ftol, max_iter 1000, m 10, no path
static inline int64_t logreg_nparams(int d, int k) { return (int64_t)k * d + k; }

// Fits θ in place: θ on entry is the warm start (zeros for a cold one). 0, or -1 with igpt_err
// when the optimiser failed outright (a line search that stops on rounding after progress is a
// normal end: sklearn's scipy ends the same way; it is reported in res->stop).
int logreg_fit(const logreg_data *data, const logreg_opts *opts, double *theta, logreg_result *res);

// F(θ) = Σ loss + ‖W‖²/(2C) and, when grad is not NULL, ∂F/∂θ [nparams]. *loss_sum gets Σ loss.
double logreg_objective(const logreg_data *data, double C, const double *theta, double *grad,
                        double *loss_sum);

// Predicted class for each of n rows of x [n, d]; also the logits [n, k] when logits != NULL.
void logreg_predict(const double *theta, int d, int k, const float *x, int64_t n, int32_t *pred,
                    float *logits);
// Fraction of rows of data predicted right.
double logreg_accuracy(const double *theta, const logreg_data *data);
