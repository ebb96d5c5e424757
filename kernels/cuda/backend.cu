// backend: the CUDA backend's table (kernels/backend.h): opening the device with the reason it is
// unusable when it is (no driver, no device, out of memory), device memory and transfers, and the
// ops of the .cu files beside this. The runtime library is linked, not dlopened: libcudart loads
// the driver (libcuda.so.1) itself on first use, so on a machine without a driver the binary
// starts and cudaGetDeviceCount reports cudaErrorInsufficientDriver, which becomes the message.
#include "kernels/cuda/cuda.cuh"
#include <string.h>

cuda_state cuda_g;

static void *dev_alloc(size_t bytes) {
  void *p = NULL;
  if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free allocation error
    return NULL;
  }
  return p;
}
static void dev_release(void *p) {
  if (p) CUDA_CHECK(cudaFree(p));
}
static void dev_zero(void *p, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes));
}
static void dev_upload(void *dst, const void *src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
static void dev_download(void *dst, const void *src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void *cuda_scratch(void **buf, size_t *cap, size_t bytes) {
  if (bytes > *cap) {
    if (*buf) CUDA_CHECK(cudaFree(*buf));
    *buf = NULL;
    if (cudaMalloc(buf, bytes) != cudaSuccess) {
      fprintf(stderr, "igpt: out of GPU memory for %zu bytes of scratch; use a smaller --batch\n", bytes);
      exit(1);
    }
    *cap = bytes;
  }
  return *buf;
}

static backend cuda_table = {
    .name = "cuda",
    .detail = cuda_g.detail,
    .host_memory = false,
    .alloc = dev_alloc,
    .release = dev_release,
    .zero = dev_zero,
    .upload = dev_upload,
    .download = dev_download,
    .attention_floats = cuda_attention_floats,
    .encoder_forward = cuda_encoder_forward,
    .encoder_backward = cuda_encoder_backward,
    .rmsnorm_forward = cuda_rmsnorm_forward,
    .rmsnorm_backward = cuda_rmsnorm_backward,
    .matmul_forward = cuda_matmul_forward,
    .matmul_backward = cuda_matmul_backward,
    .attention_forward = cuda_attention_forward,
    .attention_backward = cuda_attention_backward,
    .gelu2_forward = cuda_gelu2_forward,
    .gelu2_backward = cuda_gelu2_backward,
    .residual_forward = cuda_residual_forward,
    .crossentropy_forward = cuda_crossentropy_forward,
    .crossentropy_backward = cuda_crossentropy_backward,
    .meanpool_forward = cuda_meanpool_forward,
    .meanpool_backward = cuda_meanpool_backward,
    .attention_decode_forward = cuda_attention_decode_forward,
    .kvcache_append = cuda_kvcache_append,
    .adamw_apply = cuda_adamw_apply,
    .global_norm = cuda_global_norm,
    .scale = cuda_scale,
};

extern "C" int cuda_backend_open(bool bf16, int ordinal, const backend **out, char *why, size_t n) {
  static bool opened;
  static char device[320];
  if (opened) {  // a second open only changes the precision
    cuda_g.bf16 = bf16;
    snprintf(cuda_g.detail, sizeof cuda_g.detail, "%s, %s", device, bf16 ? "bf16" : "fp32");
    *out = &cuda_table;
    return 0;
  }
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorInsufficientDriver) {
    snprintf(why, n, "no usable NVIDIA driver (%s): install a driver for CUDA %d.%d or newer",
             cudaGetErrorString(e), CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    cudaGetLastError();
    return -1;
  }
  if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0)) {
    snprintf(why, n, "no CUDA device (the driver sees none; check CUDA_VISIBLE_DEVICES)");
    cudaGetLastError();
    return -1;
  }
  if (e != cudaSuccess) {
    snprintf(why, n, "the CUDA runtime cannot list devices: %s", cudaGetErrorString(e));
    cudaGetLastError();
    return -1;
  }
  if (ordinal < 0 || ordinal >= count) {
    snprintf(why, n, "device %d was asked for (this rank's local rank) but the driver sees %d; "
             "run at most one rank per GPU on a node", ordinal, count);
    return -1;
  }
  cudaDeviceProp prop;
  if ((e = cudaSetDevice(ordinal)) != cudaSuccess || (e = cudaFree(0)) != cudaSuccess ||
      (e = cudaGetDeviceProperties(&prop, ordinal)) != cudaSuccess) {
    snprintf(why, n, "device %d cannot be used: %s", ordinal, cudaGetErrorString(e));
    cudaGetLastError();
    return -1;
  }
  if (prop.major < 8) {
    snprintf(why, n, "%s is compute capability %d.%d; this build needs 8.0 or newer (sm_80, sm_90)",
             prop.name, prop.major, prop.minor);
    return -1;
  }
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  cuda_g.workspace_size = 32u << 20;
  if (cudaMalloc(&cuda_g.workspace, cuda_g.workspace_size) != cudaSuccess) {
    snprintf(why, n, "out of GPU memory on %s (%.1f of %.1f GiB free)", prop.name, free_b / 1073741824.0,
             total_b / 1073741824.0);
    cudaGetLastError();
    return -1;
  }
  if (cublasLtCreate(&cuda_g.lt) != CUBLAS_STATUS_SUCCESS) {
    snprintf(why, n, "cuBLASLt cannot start on %s (out of memory?)", prop.name);
    return -1;
  }
  cuda_g.bf16 = bf16;
  cuda_g.sm_count = prop.multiProcessorCount;
  snprintf(device, sizeof device, "%s (sm_%d%d, %.0f GiB)", prop.name, prop.major, prop.minor,
           total_b / 1073741824.0);
  snprintf(cuda_g.detail, sizeof cuda_g.detail, "%s, %s", device, bf16 ? "bf16" : "fp32");
  opened = true;
  *out = &cuda_table;
  return 0;
}
