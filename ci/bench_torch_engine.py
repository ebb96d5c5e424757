#!/usr/bin/python3
"""PyTorch peers of ci/bench_engine.c, on the CPU or a GPU (ci/bench-features.sh, ci/bench-sample.sh,
ci/gpu-check.sh). The model of REFERENCE.md sections 1 and 6: official layout (RMS norm with gain,
gelu2, learned sos and positions, no biases, untied head), attention either explicit (softmax of
q k^T, masked) or torch's scaled_dot_product_attention (--sdpa, torch 2.x), optionally under
torch.compile (--compile) and bf16 autocast (--bf16). Modes, each printing one JSON line:
  step      forward + backward + AdamW (b1 0.9, b2 0.95), median ms
  features  every layer's pooled normalised features (l < L: mean_t norm(h_l; g1_l); L: ln_f), no grad
  sample    T tokens from sos for B sequences with a KV cache (our loop, multinomial sampling);
            --hf: HuggingFace ImageGPT's generate() with its KV cache instead
  peak      a bf16 (or fp32) matmul of 8192^3: the device's product ceiling for MFU
"""
import argparse, json, math, statistics, time
import torch
import torch.nn.functional as F


def norm(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g


class Block(torch.nn.Module):
    def __init__(s, d, h, L, sdpa):
        super().__init__()
        s.h, s.sdpa = h, sdpa
        s.g1 = torch.nn.Parameter(torch.ones(d))
        s.wqkv = torch.nn.Parameter(torch.randn(d, 3 * d) / math.sqrt(d))
        s.wo = torch.nn.Parameter(torch.randn(d, d) / math.sqrt(d * L))
        s.g2 = torch.nn.Parameter(torch.ones(d))
        s.w1 = torch.nn.Parameter(torch.randn(d, 4 * d) * 0.02)
        s.w2 = torch.nn.Parameter(torch.randn(4 * d, d) * 0.02)

    def attend(s, q, k, v, causal):
        if s.sdpa:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        w = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        if causal:
            T = q.shape[-2]
            w = w.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool, device=q.device), 1), float("-inf"))
        return w.softmax(-1) @ v

    def forward(s, x, feats=None):
        B, T, d = x.shape
        a = norm(x, s.g1)
        if feats is not None:
            feats.append(a.float().mean(1))
        q, k, v = (a @ s.wqkv).view(B, T, 3, s.h, d // s.h).permute(2, 0, 3, 1, 4)
        y = s.attend(q, k, v, True).transpose(1, 2).reshape(B, T, d)
        x = x + y @ s.wo
        m = norm(x, s.g2) @ s.w1
        return x + (m * torch.sigmoid(1.702 * m)) @ s.w2

    def step(s, x, cache, t):  # one position x [B, 1, d] against cache [2, B, h, T, hd]
        B, _, d = x.shape
        a = norm(x, s.g1)
        q, k, v = (a @ s.wqkv).view(B, 1, 3, s.h, d // s.h).permute(2, 0, 3, 1, 4)
        cache[0, :, :, t] = k[:, :, 0]
        cache[1, :, :, t] = v[:, :, 0]
        y = s.attend(q, cache[0, :, :, : t + 1], cache[1, :, :, : t + 1], False)
        x = x + y.transpose(1, 2).reshape(B, 1, d) @ s.wo
        m = norm(x, s.g2) @ s.w1
        return x + (m * torch.sigmoid(1.702 * m)) @ s.w2


class IGPT(torch.nn.Module):
    def __init__(s, L, d, h, T, V, sdpa):
        super().__init__()
        s.wte = torch.nn.Parameter(torch.randn(V, d) * 0.02)
        s.wpe = torch.nn.Parameter(torch.randn(T, d) * 0.01)
        s.sos = torch.nn.Parameter(torch.randn(d) * 0.02)
        s.blocks = torch.nn.ModuleList(Block(d, h, L, sdpa) for _ in range(L))
        s.gf = torch.nn.Parameter(torch.ones(d))
        s.wtet = torch.nn.Parameter(torch.randn(V, d) * 0.02)

    def embed(s, tokens):
        B, T = tokens.shape
        h = s.wte[tokens[:, :-1]]
        return torch.cat([s.sos.expand(B, 1, -1), h], 1) + s.wpe[:T]

    def forward(s, tokens):  # the mean cross-entropy
        h = s.embed(tokens)
        for b in s.blocks:
            h = b(h)
        logits = norm(h, s.gf) @ s.wtet.t()
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tokens.reshape(-1))

    def features(s, tokens):  # [L+1, B, d]
        h, feats = s.embed(tokens), []
        for b in s.blocks:
            h = b(h, feats)
        feats.append(norm(h, s.gf).float().mean(1))
        return torch.stack(feats)


def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev, warmup, steps):
    times = []
    for i in range(warmup + steps):
        sync(dev)
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times[warmup:])


def sample_kv(model, B, T, dev, dtype):
    L, d = len(model.blocks), model.wte.shape[1]
    h = model.blocks[0].h
    caches = [torch.empty(2, B, h, T, d // h, device=dev, dtype=dtype) for _ in range(L)]
    tokens = torch.empty(B, T, dtype=torch.long, device=dev)
    x = (model.sos + model.wpe[0]).expand(B, 1, d).to(dtype)
    for t in range(T):
        for blk, c in zip(model.blocks, caches):
            x = blk.step(x, c, t)
        p = (norm(x, model.gf) @ model.wtet.t()).float().softmax(-1)[:, 0]
        tokens[:, t] = torch.multinomial(p, 1)[:, 0]
        if t + 1 < T:
            x = (model.wte[tokens[:, t]] + model.wpe[t + 1]).unsqueeze(1).to(dtype)
    return tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["step", "features", "sample", "peak"])
    for k, v in dict(layers=4, d=128, heads=4, ctx=256, batch=8, vocab=512, threads=0, warmup=3,
                     steps=10).items():
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--device", default="cpu")
    for f in ["sdpa", "compile", "bf16", "hf"]:
        ap.add_argument("--" + f, action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev, dtype = a.device, torch.bfloat16 if a.bf16 else torch.float32
    out = {"mode": a.mode, "torch": torch.__version__, "device": dev, "sdpa": a.sdpa, "compile": a.compile,
           "bf16": a.bf16, "threads": torch.get_num_threads()}
    if dev == "cuda":
        out["gpu"] = torch.cuda.get_device_name()
        torch.backends.cuda.matmul.allow_tf32 = False
    if a.mode == "peak":
        n = 8192
        x, y = (torch.randn(n, n, device=dev, dtype=dtype) for _ in range(2))
        ms = timed(lambda: x @ y, dev, 3, 10)
        out.update(n=n, ms=ms, tflops=2 * n ** 3 / ms / 1e9)
        print(json.dumps(out))
        return
    if a.mode == "sample" and a.hf:
        from transformers import ImageGPTConfig, ImageGPTForCausalImageModeling
        cfg = ImageGPTConfig(vocab_size=a.vocab + 1, n_positions=a.ctx, n_embd=a.d, n_layer=a.layers,
                             n_head=a.heads)
        if hasattr(torch, "set_default_device"):
            torch.set_default_device(dev)
        hf = ImageGPTForCausalImageModeling(cfg).to(dev, dtype).eval()
        ids = torch.full((a.batch, 1), a.vocab, dtype=torch.long, device=dev)  # sos is id V
        gen = lambda n: hf.generate(input_ids=ids, max_length=n + 1, do_sample=True, top_k=0, use_cache=True,
                                    pad_token_id=a.vocab)
        with torch.no_grad():
            gen(4)
            sync(dev)
            t0 = time.perf_counter()
            toks = gen(a.ctx - 1)
            sync(dev)
        sec = time.perf_counter() - t0
        n = a.batch * (toks.shape[1] - 1)
        out.update(impl="HF generate", seconds=sec, tokens=n, tokens_per_s=n / sec)
        print(json.dumps(out))
        return
    if hasattr(torch, "set_default_device"):  # torch 2: parameters made on the device (L: 1.4B)
        torch.set_default_device(dev)
    model = IGPT(a.layers, a.d, a.heads, a.ctx, a.vocab, a.sdpa).to(dev)
    tokens = torch.randint(0, a.vocab, (a.batch, a.ctx), device=dev)
    ac = torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=a.bf16)
    if a.mode == "step":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
        fwd = torch.compile(model) if a.compile else model

        def step():
            opt.zero_grad(set_to_none=True)
            with ac:
                loss = fwd(tokens)
            loss.backward()
            opt.step()
        out.update(ms=timed(step, dev, a.warmup, a.steps))
        out["tokens_per_s"] = a.batch * a.ctx / out["ms"] * 1e3
    elif a.mode == "features":
        fn = torch.compile(model.features) if a.compile else model.features

        def feats():
            with torch.no_grad(), ac:
                fn(tokens)
        out.update(ms=timed(feats, dev, a.warmup, a.steps))
        out["images_per_s"] = a.batch / out["ms"] * 1e3
    else:
        model = model.to(dtype)
        with torch.no_grad():
            sample_kv(model, a.batch, 4, dev, dtype)
            sync(dev)
            t0 = time.perf_counter()
            sample_kv(model, a.batch, a.ctx, dev, dtype)
            sync(dev)
        sec = time.perf_counter() - t0
        out.update(impl="PyTorch KV-cache loop", seconds=sec, tokens=a.batch * a.ctx,
                   tokens_per_s=a.batch * a.ctx / sec)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
