"""The predator transformer (docs/predator.md, section 8): pre-norm blocks with a fused QKV
projection and a GEGLU feed-forward, no positional embedding, `tanh` of a linear map of the CLS
token. Batches of flocks of different sizes are padded; a key-padding mask keeps padding out of
every attention row (the browser never pads, so it computes the same numbers)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONTEXT_SIZE, PREDATOR_SIZE, BOID_SIZE, ACTION_SIZE = 2, 4, 4, 2
TYPES = ("cls", "ctx", "predator", "boid")
SPECIAL_TOKENS = 3  # CLS, CTX, predator


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, ffn_hidden: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln = nn.LayerNorm(d_model, eps=1e-5)
        self.qkv = nn.Linear(d_model, 3 * d_model)  # rows: Q, then K, then V
        self.attn_out = nn.Linear(d_model, d_model)
        self.ffn_ln = nn.LayerNorm(d_model, eps=1e-5)
        self.gate = nn.Linear(d_model, ffn_hidden)
        self.up = nn.Linear(d_model, ffn_hidden)
        self.down = nn.Linear(ffn_hidden, d_model)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None, cls_only: bool = False) -> torch.Tensor:
        """x [B, T, d]; keep [B, 1, 1, T] (True where a token may act as a key) or None.
        cls_only: compute only the CLS row (the last block: nothing else is read after it)."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        if cls_only:
            x, q = x[:, :1], q[:, :, :1]
        # SDPA scales by 1/sqrt(head size) and subtracts each row's maximum in its softmax.
        heads = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        x = x + self.attn_out(heads.transpose(1, 2).reshape(b, x.shape[1], d))
        h = self.ffn_ln(x)
        return x + self.down(F.gelu(self.gate(h)) * self.up(h))


class PredatorNet(nn.Module):
    def __init__(self, d_model: int = 48, n_heads: int = 4, n_layers: int = 3, ffn_hidden: int = 96) -> None:
        super().__init__()
        self.architecture = {"d_model": d_model, "n_heads": n_heads, "n_layers": n_layers, "ffn_hidden": ffn_hidden}
        self.cls_embedding = nn.Parameter(torch.randn(d_model) * 0.02)
        self.type_embeddings = nn.Parameter(torch.randn(len(TYPES), d_model) * 0.02)  # rows in TYPES order
        self.ctx_projection = nn.Linear(CONTEXT_SIZE, d_model)
        self.predator_projection = nn.Linear(PREDATOR_SIZE, d_model)
        self.boid_projection = nn.Linear(BOID_SIZE, d_model)
        self.layers = nn.ModuleList(Block(d_model, n_heads, ffn_hidden) for _ in range(n_layers))
        self.output = nn.Linear(d_model, ACTION_SIZE)

    def forward(self, context: torch.Tensor, predator: torch.Tensor, boids: torch.Tensor, count: torch.Tensor | None = None) -> torch.Tensor:
        """context [B, 2], predator [B, 4], boids [B, M, 4], count [B] (real boids; the rest of
        each row is padding; None: all M are real) -> actions [B, 2] in (-1, 1)."""
        b, m, _ = boids.shape
        types = self.type_embeddings
        tokens = torch.cat(
            [
                (self.cls_embedding + types[0]).expand(b, 1, -1),
                (self.ctx_projection(context) + types[1]).unsqueeze(1),
                (self.predator_projection(predator) + types[2]).unsqueeze(1),
                self.boid_projection(boids) + types[3],
            ],
            dim=1,
        )
        keep = None
        if count is not None:
            real = torch.arange(m, device=boids.device) < count.unsqueeze(1).to(torch.int64)
            keep = torch.cat([real.new_ones(b, SPECIAL_TOKENS), real], dim=1)[:, None, None, :]
        for i, layer in enumerate(self.layers):
            tokens = layer(tokens, keep, cls_only=i == len(self.layers) - 1)
        return torch.tanh(self.output(tokens[:, 0]))
