// device: the CPU backend's table and the process's choice of backend. See device.h.
#include "engine/device.h"
#include "engine/adamw.h"
#include "engine/comm.h"
#include "kernels/ops.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *host_alloc(size_t bytes) { return xmalloc(bytes ? bytes : 1); }
static void host_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void host_copy(void *dst, const void *src, size_t bytes) { memmove(dst, src, bytes); }
// the probabilities [B,NH,T,T] are both the forward's softmax buffer and the backward's input
static size_t cpu_attention_floats(int B, int NH, int T, int hd, bool keep) {
  (void)hd, (void)keep;
  return (size_t)B * NH * T * T;
}

static const backend cpu_table = {
    .name = "cpu",
    .detail = "CPU (OpenBLAS + OpenMP), fp32",
    .host_memory = true,
    .alloc = host_alloc,
    .release = free,
    .zero = host_zero,
    .upload = host_copy,
    .download = host_copy,
    .attention_floats = cpu_attention_floats,
    .encoder_forward = encoder_forward,
    .encoder_backward = encoder_backward,
    .rmsnorm_forward = rmsnorm_forward,
    .rmsnorm_backward = rmsnorm_backward,
    .matmul_forward = matmul_forward,
    .matmul_backward = matmul_backward,
    .attention_forward = attention_forward,
    .attention_backward = attention_backward,
    .gelu2_forward = gelu2_forward,
    .gelu2_backward = gelu2_backward,
    .residual_forward = residual_forward,
    .crossentropy_forward = crossentropy_forward,
    .crossentropy_backward = crossentropy_backward,
    .meanpool_forward = meanpool_forward,
    .meanpool_backward = meanpool_backward,
    .attention_decode_forward = attention_decode_forward,
    .kvcache_append = kvcache_append,
    .adamw_apply = adamw_apply,
    .global_norm = grad_global_norm,
    .scale = grad_scale,
};

static const backend *current = &cpu_table;

const backend *backend_cpu(void) { return &cpu_table; }
const backend *device_current(void) { return current; }

int device_select(const char *device, const char *precision) {
  if (!device) device = "cpu";
  if (!precision) precision = "bf16";
  if (strcmp(precision, "bf16") && strcmp(precision, "fp32"))
    return igpt_err("--precision wants bf16 or fp32, got '%s'", precision);
  if (!strcmp(device, "cpu")) {
    current = &cpu_table;
    return 0;
  }
  if (strcmp(device, "cuda") && strcmp(device, "auto"))
    return igpt_err("--device wants cpu, cuda or auto, got '%s'", device);
  char why[512];
  const backend *gpu = NULL;
  // one process per GPU: a data-parallel rank takes its node's local rank as its device
  int ordinal = comm_init() == 0 ? comm_local_rank() : 0;
  if (cuda_backend_open(!strcmp(precision, "bf16"), ordinal, &gpu, why, sizeof why) == 0) {
    current = gpu;
    log_debug("device: %s", gpu->detail);
    return 0;
  }
  if (!strcmp(device, "cuda")) return igpt_err("--device cuda: no usable GPU: %s", why);
  static bool said;  // auto: one line, once a process
  if (!said) fprintf(stderr, "igpt: --device auto: no usable GPU (%s); running on the CPU\n", why);
  said = true;
  current = &cpu_table;
  return 0;
}
