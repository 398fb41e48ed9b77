"""Writes what the Node tests compare the JavaScript transformer with: a browser weight file
(and its `.js` wrapper) exported by the trainer, observations with 1 to 50 boids, and PyTorch's
float32 outputs for them. Usage: python web/predator/test/make_fixtures.py OUT_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from trainer.tasks.predator.export import to_browser, to_js
from trainer.tasks.predator.model import PredatorNet


def seen(net: PredatorNet, context: torch.Tensor, predator: torch.Tensor, boids: torch.Tensor) -> torch.Tensor:
    """The last block's attention from the CLS token to each boid, averaged over the heads."""
    captured: list[torch.Tensor] = []
    last = net.layers[-1]
    hook = last.register_forward_pre_hook(lambda _module, inputs: captured.append(inputs[0]))
    with torch.no_grad():
        net(context, predator, boids)
        hook.remove()
        x = captured[0]
        b, t, d = x.shape
        hd = d // last.n_heads
        q, k, _ = last.qkv(last.ln(x)).view(b, t, 3, last.n_heads, hd).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q[:, :, :1] @ k.transpose(-1, -2) / hd**0.5, dim=-1)  # [B, heads, 1, T]
    return weights[0, :, 0, 3:].mean(dim=0)


def main(out: Path) -> None:
    torch.manual_seed(0)
    net = PredatorNet()
    with torch.no_grad():  # every parameter matters: biases, norms and embeddings away from their start
        for name, p in net.named_parameters():
            if p.dim() == 1 or "embedding" in name:
                p.add_(torch.randn_like(p) * 0.2)
    net.eval()
    g = torch.Generator().manual_seed(1)
    cases = []
    for k in range(60):
        n = 1 + k % 50
        obs = {
            "context": (0.32 + torch.rand(2, generator=g) * 1.6).tolist(),
            "predator": torch.cat([torch.rand(2, generator=g) * 2 - 1, torch.zeros(2)]).tolist(),
            "boids": torch.cat([torch.rand(n, 2, generator=g) - 0.5, torch.rand(n, 2, generator=g) * 2 - 1], dim=1).tolist(),
        }
        args = (torch.tensor([obs["context"]]), torch.tensor([obs["predator"]]), torch.tensor([obs["boids"]]))
        with torch.no_grad():
            action = net(*args)[0]
        cases.append({**obs, "action": action.tolist(), "seen": seen(net, *args).tolist()})
    out.mkdir(parents=True, exist_ok=True)
    browser = to_browser(net)
    (out / "browser_weights.json").write_text(json.dumps(browser))
    (out / "predator_model.js").write_text(to_js(browser))
    (out / "cases.json").write_text(json.dumps(cases))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
