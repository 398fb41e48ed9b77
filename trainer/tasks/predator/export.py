"""The predator's weight files (docs/predator.md, section 9).

- ours (`weights.json`): the architecture, then every tensor as {"shape", "data"} flat and
  row-major [out][in], with the type embeddings and the projection biases kept apart, and the
  provenance;
- the browser's (`browser_weights.json`): the old pages' object, matrices as nested lists
  [out][in] (PyTorch's `Linear.weight` as is), the projection biases folded into the type
  embeddings;
- `predator_model.js`: the browser object as `window.TRANSFORMER_PARAMS = {...};`.

Both read back into a `PredatorNet` (a browser file with its projection biases zero), refusing a
missing field, a wrong shape or a non-finite number with the file and field named.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch

from trainer.tasks.predator.model import TYPES, PredatorNet

FORMAT = "ludus.weights/1"
JS_PREFIX = "window.TRANSFORMER_PARAMS = "
PROJECTIONS = ("ctx_projection", "predator_projection", "boid_projection")
ARCHITECTURE = ("d_model", "n_heads", "n_layers", "ffn_hidden")
# Browser name -> the module path in a Block, for every per-layer tensor.
LAYER_TENSORS = {
    "ln_scale": "ln.weight",
    "ln_bias": "ln.bias",
    "qkv_weight": "qkv.weight",
    "qkv_bias": "qkv.bias",
    "attn_out_weight": "attn_out.weight",
    "attn_out_bias": "attn_out.bias",
    "ffn_ln_scale": "ffn_ln.weight",
    "ffn_ln_bias": "ffn_ln.bias",
    "ffn_gate_weight": "gate.weight",
    "ffn_gate_bias": "gate.bias",
    "ffn_up_weight": "up.weight",
    "ffn_up_bias": "up.bias",
    "ffn_down_weight": "down.weight",
    "ffn_down_bias": "down.bias",
}


class WeightsError(ValueError):
    """A weights file with a missing, mis-shaped or non-finite field; names the file and field."""


def _tensors(net: PredatorNet, folded: bool) -> dict[str, Any]:
    """Browser names -> float32 tensors; `folded` adds each projection bias to its type embedding."""
    types = {name: net.type_embeddings[i] for i, name in enumerate(TYPES)}
    out: dict[str, Any] = {"cls_embedding": net.cls_embedding}
    for name in PROJECTIONS:
        projection = getattr(net, name)
        out[name] = projection.weight
        if folded:
            types[name.removesuffix("_projection")] = types[name.removesuffix("_projection")] + projection.bias
        else:
            out[f"{name}_bias"] = projection.bias
    out["type_embeddings"] = types
    out["layers"] = [{key: layer.get_parameter(path) for key, path in LAYER_TENSORS.items()} for layer in net.layers]
    out["output_weight"], out["output_bias"] = net.output.weight, net.output.bias
    return out


def _json_tree(tree: Any, leaf: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _json_tree(v, leaf) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_json_tree(v, leaf) for v in tree]
    return leaf(tree.detach().to(torch.float32).cpu())


@torch.no_grad()
def to_browser(net: PredatorNet) -> dict[str, Any]:
    return {**net.architecture, **_json_tree(_tensors(net, folded=True), lambda t: t.tolist())}


@torch.no_grad()
def to_ours(net: PredatorNet, provenance: dict[str, Any]) -> dict[str, Any]:
    tensors = _json_tree(_tensors(net, folded=False), lambda t: {"shape": list(t.shape), "data": t.reshape(-1).tolist()})
    return {"format": FORMAT, "task": "predator", "architecture": dict(net.architecture), "tensors": tensors, "provenance": provenance}


def to_js(browser: dict[str, Any]) -> str:
    return JS_PREFIX + json.dumps(browser) + ";\n"


def from_js(text: str, source: str) -> dict[str, Any]:
    body = text.strip()
    if not body.startswith(JS_PREFIX.strip()):
        raise WeightsError(f"{source}: does not start with {JS_PREFIX.strip()!r}")
    body = body[len(JS_PREFIX.strip()) :].strip().removesuffix(";")
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as e:
        raise WeightsError(f"{source}: the object after {JS_PREFIX.strip()!r} is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise WeightsError(f"{source}: window.TRANSFORMER_PARAMS must be an object")
    return obj


# ---- reading ------------------------------------------------------------------------------


class _Reader:
    def __init__(self, source: str, ours: bool) -> None:
        self.source, self.ours = source, ours

    def field(self, obj: Any, path: str) -> Any:
        at = obj
        for part in path.split("."):
            key: Any = int(part) if part.isdigit() else part
            try:
                at = at[key]
            except (KeyError, IndexError, TypeError):
                raise WeightsError(f"{self.source}: field {path!r} is missing") from None
        return at

    def number(self, obj: Any, name: str) -> int:
        value = self.field(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4096:
            raise WeightsError(f"{self.source}: field {name!r} must be a whole number in 1..4096, not {value!r}")
        return value

    def tensor(self, obj: Any, path: str, shape: tuple[int, ...]) -> torch.Tensor:
        value = self.field(obj, path)
        if self.ours:
            if not isinstance(value, dict) or "data" not in value or "shape" not in value:
                raise WeightsError(f"{self.source}: field {path!r} must be {{'shape': [...], 'data': [...]}}")
            if list(value["shape"]) != list(shape):
                raise WeightsError(f"{self.source}: field {path!r} has shape {value['shape']}, expected {list(shape)}")
            value = value["data"]
            shape_of_data: tuple[int, ...] = (math.prod(shape),)
        else:
            shape_of_data = shape
        try:
            t = torch.tensor(value, dtype=torch.float64)
        except (TypeError, ValueError) as e:
            raise WeightsError(f"{self.source}: field {path!r} must be numbers of shape {list(shape_of_data)} ({e})") from None
        if tuple(t.shape) != shape_of_data:
            raise WeightsError(f"{self.source}: field {path!r} has shape {list(t.shape)}, expected {list(shape_of_data)}")
        t32 = t.to(torch.float32)
        if not torch.isfinite(t32).all():
            raise WeightsError(f"{self.source}: field {path!r} holds a non-finite number (or one too large for float32)")
        return t32.reshape(shape)


@torch.no_grad()
def _read(obj: Any, source: str, ours: bool) -> PredatorNet:
    r = _Reader(source, ours)
    if not isinstance(obj, dict):
        raise WeightsError(f"{source}: expected a JSON object")
    if ours and (obj.get("format") != FORMAT or obj.get("task") != "predator"):
        raise WeightsError(f"{source}: fields 'format'/'task' must be {FORMAT!r}/'predator', not {obj.get('format')!r}/{obj.get('task')!r}")
    arch_obj = r.field(obj, "architecture") if ours else obj
    d, heads, n_layers, ffn = (r.number(arch_obj, name) for name in ARCHITECTURE)
    if d % heads:
        raise WeightsError(f"{source}: field 'n_heads' ({heads}) does not divide 'd_model' ({d})")
    prefix = "tensors." if ours else ""
    layers = r.field(obj, prefix + "layers")
    if not isinstance(layers, list) or len(layers) != n_layers:
        raise WeightsError(f"{source}: field {prefix + 'layers'!r} must be a list of n_layers={n_layers} objects")

    def tensor(path: str, shape: tuple[int, ...]) -> torch.Tensor:
        return r.tensor(obj, prefix + path, shape)

    net = PredatorNet(d, heads, n_layers, ffn)
    net.cls_embedding.copy_(tensor("cls_embedding", (d,)))
    for i, name in enumerate(TYPES):
        net.type_embeddings[i].copy_(tensor(f"type_embeddings.{name}", (d,)))
    for name, inputs in zip(PROJECTIONS, (2, 4, 4), strict=True):
        projection = getattr(net, name)
        projection.weight.copy_(tensor(name, (d, inputs)))
        projection.bias.copy_(tensor(f"{name}_bias", (d,)) if ours else torch.zeros(d))
    for i, layer in enumerate(net.layers):
        for key, path in LAYER_TENSORS.items():
            parameter = layer.get_parameter(path)
            parameter.copy_(tensor(f"layers.{i}.{key}", tuple(parameter.shape)))
    net.output.weight.copy_(tensor("output_weight", (2, d)))
    net.output.bias.copy_(tensor("output_bias", (2,)))
    return net.eval()


def from_ours(obj: Any, source: str) -> PredatorNet:
    return _read(obj, source, ours=True)


def from_browser(obj: Any, source: str) -> PredatorNet:
    return _read(obj, source, ours=False)
