#!/usr/bin/python3
"""The iGPT forward + backward (no optimizer) in plain PyTorch, the peer for ci/bench-model.sh.

Official layout (REFERENCE.md section 1): RMS norm with gain only (eps 1e-5), gelu2, learned sos
and positions, fused q|k|v, no biases, causal attention, untied head, mean cross-entropy.
Prints {"fwd_ms", "fwdbwd_ms"} (medians after warm-up) as JSON.
"""
import argparse, json, math, statistics, time
import torch
import torch.nn.functional as F


def norm(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g


class IGPT(torch.nn.Module):
    def __init__(s, L, d, h, T, V):
        super().__init__()
        P = lambda *shape, std: torch.nn.Parameter(torch.randn(*shape) * std)
        s.h = h
        s.wte, s.wpe, s.sos = P(V, d, std=0.02), P(T, d, std=0.01), P(d, std=0.02)
        s.g1 = torch.nn.Parameter(torch.ones(L, d))
        s.g2 = torch.nn.Parameter(torch.ones(L, d))
        s.wqkv, s.wo = P(L, 3 * d, d, std=d ** -0.5), P(L, d, d, std=(d * L) ** -0.5)
        s.w1, s.w2 = P(L, 4 * d, d, std=0.02), P(L, d, 4 * d, std=0.02)
        s.gf = torch.nn.Parameter(torch.ones(d))
        s.wtet = P(V, d, std=0.01)
        s.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(s, tokens):
        B, T = tokens.shape
        d = s.wte.shape[1]
        hd = d // s.h
        x = torch.cat([s.sos.expand(B, 1, -1), s.wte[tokens[:, :-1]]], 1) + s.wpe
        for l in range(s.g1.shape[0]):
            q, k, v = (norm(x, s.g1[l]) @ s.wqkv[l].t()).view(B, T, 3, s.h, hd).permute(2, 0, 3, 1, 4)
            w = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            y = w.masked_fill(s.mask, float("-inf")).softmax(-1) @ v
            x = x + y.transpose(1, 2).reshape(B, T, d) @ s.wo[l].t()
            m = norm(x, s.g2[l]) @ s.w1[l].t()
            x = x + (m * torch.sigmoid(1.702 * m)) @ s.w2[l].t()
        logits = norm(x, s.gf) @ s.wtet.t()
        return F.cross_entropy(logits.reshape(B * T, -1), tokens.reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(layers=4, d=128, heads=4, ctx=256, batch=8, vocab=512, threads=2, steps=10).items():
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = IGPT(a.layers, a.d, a.heads, a.ctx, a.vocab)
    tokens = torch.randint(0, a.vocab, (a.batch, a.ctx))
    tf, tb = [], []
    for i in range(2 + a.steps):
        t0 = time.perf_counter()
        loss = model(tokens)
        t1 = time.perf_counter()
        model.zero_grad(set_to_none=False)
        loss.backward()
        t2 = time.perf_counter()
        if i >= 2:
            tf.append((t1 - t0) * 1e3), tb.append((t2 - t0) * 1e3)
    print(json.dumps({"fwd_ms": statistics.median(tf), "fwdbwd_ms": statistics.median(tb),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
