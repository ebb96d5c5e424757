#!/usr/bin/python3
"""Writes the HF oracle's weights (ORACLE/model.safetensors) as a pytorch_model.bin for
tests/test_torch_bin.c. Usage: torch_bin_writer.py MODE ORACLE_DIR OUT.bin
  torch             torch.save of the state dict (Debian's python3-torch; OrderedDict with _metadata)
                    Both modes add older HF files' attention-mask buffers (bool/uint8, float scalar).
  imitate           the same zip layout and pickle without torch: zipfile + pickle with torch's
                    persistent ids ('storage', torch.FloatStorage, key, 'cpu', numel) and
                    torch._utils._rebuild_tensor_v2, stand-in classes registered under torch's names
  hostile-global    imitate, plus an os.system call in data.pkl
  hostile-storage   imitate, with one storage member shorter than data.pkl declares
  hostile-offset    imitate, with one tensor's offset past its storage
  hostile-shape     imitate, with one tensor's shape overflowing 64 bits"""
import collections, json, os, pickle, struct, sys, types, zipfile
import numpy as np

mode, oracle, out = sys.argv[1:4]
raw = open(os.path.join(oracle, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
state = collections.OrderedDict()
for name in sorted(k for k in head if k != "__metadata__"):
    h = head[name]
    assert h["dtype"] == "F32", name
    b, e = h["data_offsets"]
    state[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<f4").reshape(h["shape"])

# Older HF checkpoints also hold each block's attention-mask buffers (not weights): a bool/uint8
# lower triangle and a float scalar, which the importer skips.
n_ctx = state["transformer.wpe.weight"].shape[0]
buffers = collections.OrderedDict()
for l in range(len([k for k in state if k.endswith(".ln_1.weight")])):
    buffers["transformer.h.%d.attn.bias" % l] = np.tril(np.ones((n_ctx, n_ctx), dtype=np.uint8)).reshape(1, 1, n_ctx, n_ctx)
    buffers["transformer.h.%d.attn.masked_bias" % l] = np.array(-1e4, dtype=np.float32)

if mode == "torch":
    import torch
    sd = collections.OrderedDict((k, torch.from_numpy(v.copy())) for k, v in state.items())
    for k, v in buffers.items():
        sd[k] = torch.from_numpy(v.copy()).bool() if v.dtype == np.uint8 else torch.from_numpy(v.copy())
    sd._metadata = collections.OrderedDict([("", {"version": 1})])  # as nn.Module.state_dict() has
    torch.save(sd, out)
    sys.exit(0)

# Stand-ins registered under torch's names, so pickle writes GLOBAL 'torch FloatStorage' etc.
torch_mod, utils_mod = types.ModuleType("torch"), types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch_mod, utils_mod
class FloatStorage: pass
class ByteStorage: pass
FloatStorage.__module__ = ByteStorage.__module__ = "torch"
torch_mod.FloatStorage, torch_mod.ByteStorage = FloatStorage, ByteStorage
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"
utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2

class Storage:
    def __init__(self, key, numel, kind=FloatStorage): self.key, self.numel, self.kind = key, numel, kind
class Tensor:
    def __init__(self, storage, offset, shape):
        self.storage, self.offset, self.shape = storage, offset, tuple(shape)
    def __reduce__(self):
        stride, s = [], 1
        for d in reversed(self.shape):
            stride.insert(0, s); s *= d
        return (_rebuild_tensor_v2, (self.storage, self.offset, self.shape, tuple(stride), False,
                                     collections.OrderedDict()))
class Hostile:
    def __reduce__(self): return (os.system, ("true",))

class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return ("storage", obj.kind, obj.key, "cpu", obj.numel) if isinstance(obj, Storage) else None

members, sd = {}, collections.OrderedDict()
for i, (name, a) in enumerate(list(state.items()) + list(buffers.items())):
    key = str(i)
    members[key] = a.tobytes()
    sd[name] = Tensor(Storage(key, a.size, ByteStorage if a.dtype == np.uint8 else FloatStorage), 0, a.shape)
first = next(iter(sd))
if mode == "hostile-global": sd["evil"] = Hostile()
if mode == "hostile-storage": members["0"] = members["0"][:-4]
if mode == "hostile-offset": sd[first].offset = 1
if mode == "hostile-shape": sd[first].shape = (1 << 21, 1 << 21, 1 << 21)  # 2^63 elements
buf = __import__("io").BytesIO()
Pickler(buf, protocol=2).dump(sd)
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:  # torch's layout: archive/data.pkl first
    z.writestr("archive/data.pkl", buf.getvalue())
    z.writestr("archive/byteorder", "little")
    for key, data in members.items(): z.writestr("archive/data/" + key, data)
    z.writestr("archive/version", "3\n")
