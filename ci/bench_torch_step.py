#!/usr/bin/python3
"""The iGPT training step in plain PyTorch, the peer for ci/bench-cpu.sh.

Official layout (REFERENCE.md section 1): RMS norm with gain only (eps 1e-5), gelu2
(x * sigmoid(1.702 x)), learned sos vector and positions, no biases, causal attention,
untied zero-initialised head, mean cross-entropy; one step = forward + backward + AdamW
(b1 0.9, b2 0.95, eps 1e-8, no weight decay). Prints the median ms/step after warm-up, wall
and CPU time of all threads, as JSON.
"""
import argparse, json, math, statistics, time
import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(s, d, h, L):
        super().__init__()
        s.h = h
        s.g1 = torch.nn.Parameter(torch.ones(d))
        s.wqkv = torch.nn.Parameter(torch.randn(d, 3 * d) / math.sqrt(d))  # q | k | v, one matmul
        s.wo = torch.nn.Parameter(torch.randn(d, d) / math.sqrt(d * L))
        s.g2 = torch.nn.Parameter(torch.ones(d))
        s.w1 = torch.nn.Parameter(torch.randn(d, 4 * d) * 0.02)
        s.w2 = torch.nn.Parameter(torch.randn(4 * d, d) * 0.02)

    def forward(s, x, mask):
        B, T, d = x.shape
        hd = d // s.h
        a = norm(x, s.g1)
        q, k, v = (a @ s.wqkv).view(B, T, 3, s.h, hd).permute(2, 0, 3, 1, 4)
        w = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        w = w.masked_fill(mask, float("-inf")).softmax(-1)
        y = (w @ v).transpose(1, 2).reshape(B, T, d)
        x = x + y @ s.wo
        m = norm(x, s.g2) @ s.w1
        return x + (m * torch.sigmoid(1.702 * m)) @ s.w2


def norm(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g


class IGPT(torch.nn.Module):
    def __init__(s, L, d, h, T, V):
        super().__init__()
        s.wte = torch.nn.Parameter(torch.randn(V, d) * 0.02)
        s.wpe = torch.nn.Parameter(torch.randn(T, d) * 0.01)
        s.sos = torch.nn.Parameter(torch.randn(d) * 0.02)
        s.blocks = torch.nn.ModuleList(Block(d, h, L) for _ in range(L))
        s.gf = torch.nn.Parameter(torch.ones(d))
        s.wtet = torch.nn.Parameter(torch.zeros(V, d))
        s.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(s, tokens):
        B, T = tokens.shape
        h = s.wte[tokens[:, :-1]]
        h = torch.cat([s.sos.expand(B, 1, -1), h], 1) + s.wpe
        for b in s.blocks:
            h = b(h, s.mask)
        logits = norm(h, s.gf) @ s.wtet.t()
        return F.cross_entropy(logits.reshape(B * T, -1), tokens.reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(layers=4, d=128, heads=4, ctx=256, batch=8, vocab=512, threads=2,
                     warmup=3, steps=10).items():
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = IGPT(a.layers, a.d, a.heads, a.ctx, a.vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.0)
    tokens = torch.randint(0, a.vocab, (a.batch, a.ctx))
    times, cpu = [], []
    for i in range(a.warmup + a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = model(tokens)
        loss.backward()
        opt.step()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    ms = statistics.median(times[a.warmup:])
    print(json.dumps({"ms_per_step": ms, "cpu_ms_per_step": statistics.median(cpu[a.warmup:]),
                      "loss": loss.item(), "threads": a.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
