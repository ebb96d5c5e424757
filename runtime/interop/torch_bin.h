// torch_bin: HuggingFace hub's pytorch_model.bin (torch.save's zip: ARCHIVE/data.pkl holding the
// state dict, one ARCHIVE/data/<key> member per storage) read without Python: libarchive for the
// zip (datasets/unpack.h), the project's non-executing pickle reader for data.pkl
// (datasets/decode.h: torch persistent ids and _rebuild_tensor_v2 only). The tensors then go
// through the HF mapping (interop/hf.h) with config.json beside the file, which wants float32
// weights and skips older checkpoints' attention-mask buffers: the second source of the released
// weights (openai/imagegpt-small, -medium, -large).
#pragma once
#include "base/safetensors.h"
#include "engine/model.h"
#include <stdbool.h>

// Reads every tensor of the .bin into f (tensors in one allocation f->map, names and dtypes as in
// the state dict; f->path is bin). Refused, naming the file: not a zip, no data.pkl, a hostile
// pickle (decode_torch_pickle), a storage member missing or shorter than its tensors need,
// big-endian data. Close with torch_bin_close.
int torch_bin_read(const char *bin, st_file *f);
void torch_bin_close(st_file *f);
// torch_bin_read, then hf_import_tensors with the config.json beside bin.
model *torch_import(const char *bin, bool drop_zero_biases);
