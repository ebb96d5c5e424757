// vmath: lets `#pragma omp simd` loops call glibc's vector expf (libmvec, linked through libm).
// math.h declares the SIMD variants only under -ffast-math; this declaration alone enables them
// without fast-math's other effects. libmvec's expf is accurate to a few ulp.
#pragma once
#include <math.h>

#pragma omp declare simd notinbranch
float expf(float);
