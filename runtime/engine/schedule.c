// schedule: linear warmup then cosine to 0. See schedule.h.
#include "engine/schedule.h"
#include <math.h>

double lr_at(const lr_schedule *sch, long s) {
  if (s < sch->warmup) return sch->lr * (double)(s + 1) / (double)sch->warmup;
  long span = sch->total - sch->warmup;
  if (span <= 0 || s >= sch->total) return 0.0;
  double progress = (double)(s - sch->warmup) / (double)span;
  return sch->lr * 0.5 * (1.0 + cos(M_PI * progress));
}
