// version: the code's version (`git describe` at build time), for results, reports and the
// User-Agent. One object holds it, rebuilt when the version changes (see the Makefile).
#pragma once

extern const char igpt_version[];
#define IGPT_VERSION igpt_version
