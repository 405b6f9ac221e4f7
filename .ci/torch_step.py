#!/usr/bin/env python3
"""The training step of `negsweep bench`, written in PyTorch, timed the same way.

Per step: B = 256 anchors, each with one positive and k negatives, every index drawn uniformly
from 4,096 random examples (64 B rows drawn up front, used in turn, as `bench::step_bench`
does). Logistic NCE on raw dot products (no normalisation, temperature 1): the loss is
-mean log softmax([<a, p>, <a, n_1>, ..., <a, n_k>]) at the positive. Adam (AdamW with weight
decay 0, lr 1e-3, betas 0.9 / 0.999, eps 1e-8: candle's `ParamsAdamW::default`).

Encoders, as in `src/model`:
  embedding-bag  mean of 24 token embeddings (512 x 256), then Linear(256, 128)
  gru            token embeddings (512 x 256), one-layer GRU(256, 256) over the 24 tokens,
                 last state, then Linear(256, 128)
  mlp            Linear(256, 512), ReLU, Linear(512, 128) on dense inputs in [0, 1)
  cnn            3 x 32 x 32 inputs in [0, 1); two blocks relu(maxpool2(conv3x3, pad 1)) with
                 16 and 32 channels, then Linear(32 * 8 * 8, 128)

Variants:
  all       encode every one of the step's B (k + 2) rows, repeats included
  distinct  torch.unique over the step's indices, encode each distinct example once, gather
            (what negsweep does, so the fair comparison)

Logits (`--logits`):
  pairs     B (k + 1) dot products: <a, p> and a batched product with the k negatives
  matrix    distinct only: the B x U similarity matrix of the anchors against every distinct
            row, then a gather (negsweep's `batch_loss` before `PairScores`)

Timing: one warm-up step, then the best of three windows of steps/s, each at least 2 steps
and `seconds / 3` long. Prints one JSON object per row.
"""

import argparse
import json
import sys
import time

EXAMPLES = 4096
BATCH = 256
TOKENS = 24
ENCODERS = ("embedding-bag", "gru", "mlp", "cnn")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--encoders", default=",".join(ENCODERS),
                   help="comma-separated, of %s" % ", ".join(ENCODERS))
    p.add_argument("--k", default="1,16,128", help="negatives per anchor, comma-separated")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads (default: PyTorch's own choice)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="seconds per measurement, over three windows")
    p.add_argument("--variant", default="all,distinct",
                   help="all, distinct, or both comma-separated")
    p.add_argument("--logits", choices=("pairs", "matrix"), default="pairs",
                   help="how the distinct variant computes its logits (see above)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    a.encoders = [e for e in a.encoders.split(",") if e]
    a.k = [int(k) for k in a.k.split(",") if k]
    a.variant = [v for v in a.variant.split(",") if v]
    for e in a.encoders:
        if e not in ENCODERS:
            p.error("unknown encoder %r" % e)
    for v in a.variant:
        if v not in ("all", "distinct"):
            p.error("unknown variant %r" % v)
    return a


def main():
    args = parse_args()
    import torch
    from torch import nn
    import torch.nn.functional as F

    # Before any parallel work: one inter-op thread, T intra-op threads.
    torch.set_num_interop_threads(1)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    torch.manual_seed(args.seed)

    class Bag(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.EmbeddingBag(512, 256, mode="mean")
            self.proj = nn.Linear(256, 128)

        def forward(self, tokens):  # (N, 24) token ids: one bag per row
            return self.proj(self.emb(tokens))

    class Gru(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(512, 256)
            self.gru = nn.GRU(256, 256, batch_first=True)
            self.proj = nn.Linear(256, 128)

        def forward(self, tokens):  # (N, 24)
            _, h = self.gru(self.emb(tokens))
            return self.proj(h[-1])

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(256, 512)
            self.fc2 = nn.Linear(512, 128)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

    class Cnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.head = nn.Linear(32 * 8 * 8, 128)

        def forward(self, x):  # (N, 3, 32, 32)
            x = F.relu(F.max_pool2d(self.conv1(x), 2))
            x = F.relu(F.max_pool2d(self.conv2(x), 2))
            return self.head(x.flatten(1))

    def inputs(encoder):
        if encoder in ("embedding-bag", "gru"):
            return torch.randint(0, 512, (EXAMPLES, TOKENS))
        if encoder == "mlp":
            return torch.rand(EXAMPLES, 256)
        return torch.rand(EXAMPLES, 3, 32, 32)

    models = {"embedding-bag": Bag, "gru": Gru, "mlp": Mlp, "cnn": Cnn}

    def measure(encoder, k, variant):
        x = inputs(encoder)
        rows = 64 * BATCH
        anchors = torch.randint(0, EXAMPLES, (rows,))
        positives = torch.randint(0, EXAMPLES, (rows,))
        negatives = torch.randint(0, EXAMPLES, (rows, k))
        model = models[encoder]()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                weight_decay=0.0)
        matrix = variant == "distinct" and args.logits == "matrix"
        encoded = [0]

        def step(s):
            lo = (s * BATCH) % rows
            a = anchors[lo:lo + BATCH]
            p = positives[lo:lo + BATCH]
            n = negatives[lo:lo + BATCH].reshape(-1)
            idx = torch.cat([a, p, n])
            if variant == "distinct":
                ids, inv = torch.unique(idx, return_inverse=True)
                e = model(x[ids])
                encoded[0] += len(ids)
            else:
                e = model(x[idx])
                inv = None
                encoded[0] += len(idx)
            if matrix:
                # Anchors against every distinct row, then each anchor's positive and negatives.
                ia = inv[:BATCH]
                sims = e[ia] @ e.t()
                cols = torch.cat([inv[BATCH:2 * BATCH, None],
                                  inv[2 * BATCH:].view(BATCH, k)], 1)
                logits = sims.gather(1, cols)
            else:
                if inv is not None:
                    e = e[inv]
                ea, ep = e[:BATCH], e[BATCH:2 * BATCH]
                en = e[2 * BATCH:].view(BATCH, k, -1)
                pos = (ea * ep).sum(1, keepdim=True)
                neg = torch.bmm(en, ea.unsqueeze(2)).squeeze(2)
                logits = torch.cat([pos, neg], 1)
            loss = -F.log_softmax(logits, 1)[:, 0].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

        step(0)  # warm-up
        encoded[0] = 0
        s, total, best = 0, 0, 0.0
        for _ in range(3):
            start = time.perf_counter()
            n = 0
            while n < 2 or time.perf_counter() - start < args.seconds / 3:
                s += 1
                step(s)
                n += 1
            total += n
            best = max(best, n / (time.perf_counter() - start))
        return best, encoded[0] / total

    for encoder in args.encoders:
        for k in args.k:
            for variant in args.variant:
                steps_per_s, rows = measure(encoder, k, variant)
                print(json.dumps({
                    "encoder": encoder,
                    "k": k,
                    "threads": threads,
                    "variant": variant,
                    "steps_per_s": steps_per_s,
                    "rows_encoded": rows,
                    "logits": "matrix" if variant == "distinct" and args.logits == "matrix"
                    else "pairs",
                    "torch": torch.__version__,
                }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
