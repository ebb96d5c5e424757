// schedule: the learning rate at each step: linear warmup from lr/warmup to lr over `warmup`
// steps, then cosine decay to 0 at `total` steps (the paper: warmup then cosine to 0).
#pragma once

typedef struct {
  double lr;   // peak learning rate
  long warmup; // steps of linear warmup (0: none)
  long total;  // total steps of the run; the cosine reaches 0 at step == total
} lr_schedule;

// Learning rate for step s (0-based: the s-th update).
//   s < warmup:  lr * (s + 1) / warmup
//   else:        lr * 0.5 * (1 + cos(pi * (s - warmup) / (total - warmup)))
double lr_at(const lr_schedule *sch, long s);
