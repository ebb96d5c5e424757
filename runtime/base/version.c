// version: see version.h. IGPT_VERSION_STRING comes from the Makefile, for this file only.
#include "base/version.h"

#ifndef IGPT_VERSION_STRING
#define IGPT_VERSION_STRING "unknown"
#endif
const char igpt_version[] = IGPT_VERSION_STRING;
