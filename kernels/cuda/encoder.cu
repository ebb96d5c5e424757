// encoder: token + position embeddings with the sos vector (AR) or the BERT mask, on the GPU.
// The backward is deterministic without atomics: wpe and sos sum over the batch per channel, and
// wte sums each token row's positions in position order from a per-token list built on the host
// (the same order as the CPU reference's loop). See kernels/ops.h.
#include "kernels/cuda/cuda.cuh"
#include <string.h>

__global__ static void encoder_forward_kernel(float *out, const uint16_t *tok, const uint8_t *mask,
                                              const float *wte, const float *wpe, const float *sos,
                                              int B, int T, int C) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)B * T * C) return;
  int c = (int)(i % C);
  size_t bt = i / C;
  int t = (int)(bt % T);
  const float *e;
  if (sos) e = t == 0 ? sos : wte + (size_t)tok[bt - 1] * C;
  else e = mask && mask[bt] ? NULL : wte + (size_t)tok[bt] * C;
  float p = wpe[(size_t)t * C + c];
  out[i] = e ? e[c] + p : p;
}

void cuda_encoder_forward(float *out, const uint16_t *tok, const uint8_t *mask, const float *wte,
                          const float *wpe, const float *sos, int B, int T, int C) {
  size_t n = (size_t)B * T * C;
  encoder_forward_kernel<<<ceil_div(n, 256), 256>>>(out, tok, mask, wte, wpe, sos, B, T, C);
  LAUNCH_CHECK();
}

// dwpe[t,c] += sum_b dout[b,t,c]; dsos[c] += sum_b dout[b,0,c] (AR)
__global__ static void encoder_pos_kernel(float *dwpe, float *dsos, const float *dout, int B, int T, int C) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)T * C) return;
  float s = 0.0f;
  for (int b = 0; b < B; b++) s += dout[(size_t)b * T * C + i];
  if (dwpe) dwpe[i] += s;
  if (dsos && i < (size_t)C) dsos[i] += s;  // t = 0: the sos position
}

// dwte[v,c] += sum over v's positions (list start[v]..start[v+1] of flat positions) of dout[pos,c]
__global__ static void encoder_tok_kernel(float *dwte, const float *dout, const int *start,
                                          const int *pos, int C) {
  int v = blockIdx.x;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float s = 0.0f;
    for (int k = start[v]; k < start[v + 1]; k++) s += dout[(size_t)pos[k] * C + c];
    dwte[(size_t)v * C + c] += s;
  }
}

void cuda_encoder_backward(float *dwte, float *dwpe, float *dsos, const float *dout,
                           const uint16_t *tok, const uint8_t *mask, int B, int T, int C) {
  size_t TC = (size_t)T * C;
  if (dwpe || dsos) {
    encoder_pos_kernel<<<ceil_div(TC, 256), 256>>>(dwpe, dsos, dout, B, T, C);
    LAUNCH_CHECK();
  }
  if (!dwte) return;
  // which positions read which token row (AR: position t > 0 reads tok[t-1]; BERT: an unmasked
  // position t reads tok[t]), counting-sorted into per-token lists in position order
  size_t BT = (size_t)B * T;
  uint16_t *htok = (uint16_t *)malloc(BT * sizeof *htok);
  uint8_t *hmask = mask ? (uint8_t *)malloc(BT) : NULL;
  CUDA_CHECK(cudaMemcpy(htok, tok, BT * sizeof *htok, cudaMemcpyDeviceToHost));
  if (mask) CUDA_CHECK(cudaMemcpy(hmask, mask, BT, cudaMemcpyDeviceToHost));
  int *row = (int *)malloc(BT * sizeof *row), V = 0;
  for (size_t bt = 0; bt < BT; bt++) {
    int t = (int)(bt % T);
    row[bt] = dsos ? (t ? htok[bt - 1] : -1) : (hmask && hmask[bt] ? -1 : htok[bt]);
    if (row[bt] + 1 > V) V = row[bt] + 1;
  }
  if (V == 0) { free(htok), free(hmask), free(row); return; }
  int *list = (int *)malloc(((size_t)V + 1 + BT) * sizeof *list), *start = list, *pos = list + V + 1;
  memset(start, 0, ((size_t)V + 1) * sizeof *start);
  for (size_t bt = 0; bt < BT; bt++) if (row[bt] >= 0) start[row[bt] + 1]++;
  for (int v = 0; v < V; v++) start[v + 1] += start[v];
  int *fill = (int *)malloc((size_t)V * sizeof *fill);
  memcpy(fill, start, (size_t)V * sizeof *fill);
  for (size_t bt = 0; bt < BT; bt++) if (row[bt] >= 0) pos[fill[row[bt]]++] = (int)bt;
  static void *dlist;
  static size_t dcap;
  size_t bytes = ((size_t)V + 1 + BT) * sizeof *list;
  int *d = (int *)cuda_scratch(&dlist, &dcap, bytes);
  CUDA_CHECK(cudaMemcpy(d, list, bytes, cudaMemcpyHostToDevice));
  encoder_tok_kernel<<<V, C < 256 ? C : 256>>>(dwte, dout, d, d + V + 1, C);
  LAUNCH_CHECK();
  free(htok), free(hmask), free(row), free(list), free(fill);
}
