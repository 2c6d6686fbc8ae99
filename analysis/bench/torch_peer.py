#!/usr/bin/python3
"""torch_peer.py: bench's W1 and W2 written in PyTorch as a user would write them, the peer that
`normscope bench` sets normscope's times against (analysis/bench/README.md).

  torch_peer.py propagate --depth 64 --width 256 --heads 4 --seq 128 --batch 8 --threads 2
  torch_peer.py train --depth 64 --width 256 --heads 4 --seq 128 --batch 8 --vocab 256

propagate (W1): per run, a Transformer stack drawn afresh (weights N(0, 1/fan_in), no biases,
LayerNorm on each sublayer's input: y = x + F(N(x))), a Gaussian input and cotangent G, forward,
backward of Loss = sum(x_L * G) with retain_grad on every stream, and the per-layer statistics
W1 records (analysis/stats/README.md: act_ms, act_var, cos_tokens, eff_rank, cos_layer,
attn_entropy, attn_out_ms, mlp_out_ms, grad_ms, param_grad_ms).
train (W2): one step of a decoder-only language model whose blocks put one norm on the sum of
their branches, gain 1/sqrt(L) (a = A(x); f = F(x + a); y = x + N(a + f)): batch, forward,
cross-entropy, backward, clipping at 1, AdamW.
A first run (or step) warms up and is not counted; then --repeats runs. Prints one JSON object:
the median and every repeat's seconds, and each repeat's statistics (propagate: a list of L + 1
or L values per statistic, the stream's first; train: the loss)."""
import argparse
import ctypes
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def set_threads(n):
    """torch.set_num_threads(n), and the same for OpenBLAS: Debian's torch does its matrix
    products there, and torch's setting does not reach it, so at 1 thread the products would
    still run on a thread per core (and at 2, they compete with torch's own threads)."""
    torch.set_num_threads(n)
    try:
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(n)
    except (OSError, AttributeError):
        pass  # another BLAS: torch's own setting is all there is


def normal_init(module, std_scale=1.0):
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std_scale / math.sqrt(m.in_features))


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.probs = None

    def forward(self, x):
        B, T, d = x.shape
        split = lambda t: t.view(B, T, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        self.probs = scores.masked_fill(causal, float("-inf")).softmax(-1)
        return self.o((self.probs @ v).transpose(1, 2).reshape(B, T, d))


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.w1, self.w2 = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        return self.w2(F.gelu(self.w1(x), approximate="tanh"))


class NormInputBlock(nn.Module):
    """h = x + A(N1(x)); y = h + F(N2(h)); keeps its sublayers' outputs for the statistics"""

    def __init__(self, d, heads):
        super().__init__()
        self.n1, self.attn = nn.LayerNorm(d), Attention(d, heads)
        self.n2, self.mlp = nn.LayerNorm(d), MLP(d)

    def forward(self, x):
        self.a = self.attn(self.n1(x))
        h = x + self.a
        self.f = self.mlp(self.n2(h))
        return h + self.f


class NormSumBlock(nn.Module):
    """a = A(x); f = F(x + a); y = x + N(a + f), N's gain starting at alpha"""

    def __init__(self, d, heads, alpha):
        super().__init__()
        self.attn, self.mlp, self.norm = Attention(d, heads), MLP(d), nn.LayerNorm(d)
        nn.init.constant_(self.norm.weight, alpha)

    def forward(self, x):
        a = self.attn(x)
        return x + self.norm(a + self.mlp(x + a))


def cos_tokens(x):
    """mean cosine over the distinct token pairs of each sequence, averaged over sequences"""
    u = F.normalize(x, dim=-1)
    T = x.shape[1]
    return ((u.sum(1).pow(2).sum(-1) - u.pow(2).sum((1, 2))) / (T * (T - 1))).mean()


def eff_rank(x):
    s = torch.linalg.svdvals(x)
    p = s / s.sum(-1, keepdim=True)
    return torch.exp(-torch.special.xlogy(p, p).sum(-1)).mean()


def propagate(a):
    blocks = nn.ModuleList(NormInputBlock(a.width, a.heads) for _ in range(a.depth))
    normal_init(blocks)
    x = torch.randn(a.batch, a.seq, a.width)
    g = torch.randn(a.batch, a.seq, a.width)
    xs = [x.requires_grad_()]
    for block in blocks:
        xs.append(block(xs[-1]))
        xs[-1].retain_grad()
    (xs[-1] * g).sum().backward()
    with torch.no_grad():
        stats = {
            "act_ms": [x.pow(2).mean() for x in xs],
            "act_var": [x.var(-1, unbiased=False).mean() for x in xs],
            "cos_tokens": [cos_tokens(x) for x in xs],
            "eff_rank": [eff_rank(x) for x in xs],
            "cos_layer": [F.cosine_similarity(x, y, dim=-1).mean() for x, y in zip(xs, xs[1:])],
            "attn_entropy": [-torch.special.xlogy(b.attn.probs, b.attn.probs).sum(-1).mean()
                             for b in blocks],
            "attn_out_ms": [b.a.pow(2).mean() for b in blocks],
            "mlp_out_ms": [b.f.pow(2).mean() for b in blocks],
            "grad_ms": [x.grad.pow(2).mean() for x in xs],
            "param_grad_ms": [[p.grad.pow(2).mean() for p in b.parameters()] for b in blocks],
        }
    return {k: [torch.stack(r).tolist() for r in v] if k == "param_grad_ms"
            else torch.stack(v).tolist() for k, v in stats.items()}


class LM(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.tok, self.pos = nn.Embedding(a.vocab, a.width), nn.Embedding(a.seq, a.width)
        nn.init.normal_(self.pos.weight, std=0.1)
        alpha = 1 / math.sqrt(a.depth)
        self.blocks = nn.Sequential(*(NormSumBlock(a.width, a.heads, alpha)
                                      for _ in range(a.depth)))
        self.norm, self.head = nn.LayerNorm(a.width), nn.Linear(a.width, a.vocab, bias=False)
        normal_init(self)

    def forward(self, ids):
        return self.head(self.norm(self.blocks(self.tok(ids) + self.pos.weight)))


def trainer(a):
    model = LM(a)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.1)
    data = torch.randint(a.vocab, (64 * a.batch, a.seq + 1))

    def step():
        batch = data[torch.randint(len(data), (a.batch,))]
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"loss": loss.item()}
    return step


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("task", choices=["propagate", "train"])
    for name, default in (("depth", 64), ("width", 256), ("heads", 4), ("seq", 128),
                          ("batch", 8), ("vocab", 256), ("threads", 1), ("repeats", 3),
                          ("seed", 1)):
        p.add_argument("--" + name, type=int, default=default)
    a = p.parse_args()
    set_threads(a.threads)
    torch.manual_seed(a.seed)
    run = trainer(a) if a.task == "train" else lambda: propagate(a)
    run()  # warm-up: first touch of memory, thread pools
    times, out = [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        out.append(run())
        times.append(time.perf_counter() - t0)
    result = {"task": a.task, "torch": torch.__version__, "threads": a.threads,
              "seconds": statistics.median(times), "repeat_seconds": times}
    result["runs"] = out
    print(json.dumps(result))


if __name__ == "__main__":
    main()
