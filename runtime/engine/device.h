// device: the backend the engine's passes run on, chosen once per process from the verbs'
// --device cpu|cuda|auto and --precision bf16|fp32 (kernels/backend.h has the table). The CPU
// backend is the reference and the default; cuda is the GPU (bf16 products with fp32
// accumulation and fp32 master weights by default, or fp32 throughout); auto takes the GPU when
// one is usable and otherwise says once on stderr why it runs on the CPU.
#pragma once
#include "kernels/backend.h"

// The CPU reference's table (kernels/cpu/ and engine/adamw.c).
const backend *backend_cpu(void);
// Chooses the process's backend. device: "cpu", "cuda" or "auto" (NULL: cpu); precision: "bf16"
// or "fp32" (NULL: bf16; the CPU computes in fp32 either way). -1 with igpt_err saying why the
// GPU is unusable (no driver, no device, out of memory, a build without CUDA) for --device cuda,
// or naming the bad value.
int device_select(const char *device, const char *precision);
// The chosen backend (the CPU until device_select picks another); model_new uses it.
const backend *device_current(void);
