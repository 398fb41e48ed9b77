"""Weight files (docs/ur.md, section 7) and the converter for the old exporter's files.

Three layouts of one Linear layer with PyTorch weight W of shape (out, in):
- ours: explicit {"shape": [out, in], "layout": "row-major (out, in)"}, so nobody guesses;
- compat: the flat arrays the old Rust engine reads as y_j = sum_i x_i * M[i*out + j] + b_j,
  i.e. W transposed, row-major over (in, out);
- old: what the old PyTorch exporter wrote, W itself row-major over (out, in), which that
  engine read scrambled. `convert` turns such a file into the two correct ones.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

from trainer.tasks.ur.model import HIDDEN_SIZES, INPUT_SIZE, POLICY_SIZE, UrNets, linear_layers

FORMAT = "ludus.weights/1"
FEATURE_SET = "ur-150-v1"
OUR_LAYOUT = "row-major (out, in)"
NETWORKS = {"value": 1, "policy": POLICY_SIZE}
COMPAT_CONFIG = {
    "input_size": INPUT_SIZE,
    "hidden_sizes": list(HIDDEN_SIZES),
    "value_output_size": 1,
    "policy_output_size": POLICY_SIZE,
}


class WeightsError(ValueError):
    """A weights file with a missing, mis-sized or non-finite field; names the file and field."""


def layer_shapes(outputs: int) -> list[tuple[int, int]]:
    """(out, in) of each layer of a network."""
    widths = [INPUT_SIZE, *HIDDEN_SIZES, outputs]
    return [(widths[k + 1], widths[k]) for k in range(len(widths) - 1)]


def flat_size(outputs: int) -> int:
    return sum(o * i + o for o, i in layer_shapes(outputs))


# ---- writing ------------------------------------------------------------------------------


def _floats(t: torch.Tensor) -> list[float]:
    return t.detach().to(torch.float32).cpu().reshape(-1).tolist()


def to_compat(nets: UrNets, metadata: dict[str, Any]) -> dict[str, Any]:
    """The flat file the old engine reads, with every matrix transposed to (in, out)."""
    out: dict[str, Any] = {"network_config": copy.deepcopy(COMPAT_CONFIG), "metadata": metadata}
    for name in NETWORKS:
        flat: list[float] = []
        for layer in linear_layers(getattr(nets, name)):
            flat += _floats(layer.weight.T.contiguous())
            flat += _floats(layer.bias)
        out[f"{name}_weights"] = flat
    return out


def to_ours(nets: UrNets, provenance: dict[str, Any]) -> dict[str, Any]:
    """Our explicit file: every matrix with its shape and layout, and where it came from."""
    networks = {}
    for name, outputs in NETWORKS.items():
        layers = []
        for k, layer in enumerate(linear_layers(getattr(nets, name))):
            hidden = k < len(HIDDEN_SIZES)
            layers.append(
                {
                    "weight": {"shape": list(layer.weight.shape), "layout": OUR_LAYOUT, "data": _floats(layer.weight)},
                    "bias": {"shape": [layer.bias.shape[0]], "data": _floats(layer.bias)},
                    "activation": "relu" if hidden else ("tanh" if name == "value" else "none (logits)"),
                }
            )
        networks[name] = {"outputs": outputs, "layers": layers}
    return {
        "format": FORMAT,
        "task": "ur",
        "feature_set": FEATURE_SET,
        "architecture": {"input_size": INPUT_SIZE, "hidden_sizes": list(HIDDEN_SIZES), "dropout_in_training": 0.1},
        "value_sign": "positive is good for P2; scale = static evaluation / 10000",
        "networks": networks,
        "provenance": provenance,
    }


def write_json(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, separators=(",", ":")))
    tmp.replace(path)


# ---- reading ------------------------------------------------------------------------------


def _checked_numbers(values: Any, expected: int, source: str, field: str) -> torch.Tensor:
    if not isinstance(values, list):
        raise WeightsError(f"{source}: field {field!r} must be a list of {expected} numbers")
    if len(values) != expected:
        raise WeightsError(f"{source}: field {field!r} has {len(values)} numbers, expected {expected}")
    try:
        t = torch.tensor(values, dtype=torch.float64)
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{source}: field {field!r} holds something that is not a number") from e
    t = t.to(torch.float32)  # checked after the cast: 1e300 is finite in float64, not in float32
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).nonzero()[0])
        raise WeightsError(f"{source}: field {field!r} holds a non-finite number at index {bad}")
    return t


def _load_flat(nets: UrNets, obj: dict[str, Any], source: str, transposed: bool) -> UrNets:
    """Fills `nets` from flat arrays; `transposed` = compat layout (in, out), else old (out, in)."""
    for name, outputs in NETWORKS.items():
        field = f"{name}_weights"
        if field not in obj:
            raise WeightsError(f"{source}: field {field!r} is missing")
        flat = _checked_numbers(obj[field], flat_size(outputs), source, field)
        at = 0
        with torch.no_grad():
            for layer, (o, i) in zip(linear_layers(getattr(nets, name)), layer_shapes(outputs), strict=True):
                block = flat[at : at + o * i]
                layer.weight.copy_(block.reshape(i, o).T if transposed else block.reshape(o, i))
                layer.bias.copy_(flat[at + o * i : at + o * i + o])
                at += o * i + o
    return nets


def _check_config(obj: dict[str, Any], source: str) -> None:
    config = obj.get("network_config")
    if config is None:
        return
    for key, want in COMPAT_CONFIG.items():
        if config.get(key) != want:
            raise WeightsError(f"{source}: field 'network_config.{key}' is {config.get(key)!r}, expected {want!r}")


def from_compat(obj: dict[str, Any], source: str) -> UrNets:
    _check_config(obj, source)
    return _load_flat(UrNets(), obj, source, transposed=True)


def from_old(obj: dict[str, Any], source: str) -> UrNets:
    """A file of the old PyTorch exporter: matrices flattened as (out, in)."""
    _check_config(obj, source)
    return _load_flat(UrNets(), obj, source, transposed=False)


def from_ours(obj: dict[str, Any], source: str) -> UrNets:
    if obj.get("format") != FORMAT:
        raise WeightsError(f"{source}: field 'format' is {obj.get('format')!r}, expected {FORMAT!r}")
    if obj.get("feature_set") != FEATURE_SET:
        raise WeightsError(f"{source}: field 'feature_set' is {obj.get('feature_set')!r}, expected {FEATURE_SET!r}")
    nets = UrNets()
    for name, outputs in NETWORKS.items():
        layers = obj.get("networks", {}).get(name, {}).get("layers")
        shapes = layer_shapes(outputs)
        if not isinstance(layers, list) or len(layers) != len(shapes):
            raise WeightsError(f"{source}: field 'networks.{name}.layers' must hold {len(shapes)} layers")
        for k, (layer, spec, (o, i)) in enumerate(zip(linear_layers(getattr(nets, name)), layers, shapes, strict=True)):
            where = f"networks.{name}.layers[{k}]"
            weight, bias = spec.get("weight", {}), spec.get("bias", {})
            if weight.get("layout") != OUR_LAYOUT or weight.get("shape") != [o, i]:
                raise WeightsError(f"{source}: field '{where}.weight' must have shape [{o}, {i}] and layout {OUR_LAYOUT!r}")
            w = _checked_numbers(weight.get("data"), o * i, source, f"{where}.weight.data")
            b = _checked_numbers(bias.get("data"), o, source, f"{where}.bias.data")
            with torch.no_grad():
                layer.weight.copy_(w.reshape(o, i))
                layer.bias.copy_(b)
    return nets


def read_weights(path: Path) -> UrNets:
    """Reads our file or the compatible file, whichever `path` holds."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(f"{path}: cannot read a JSON weights file: {e}") from e
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a JSON object")
    return from_ours(obj, str(path)) if "format" in obj else from_compat(obj, str(path))


def engine_forward(flat: list[float], outputs: int, x: list[float]) -> list[float]:
    """The old engine's arithmetic, literally: y_j = sum_i x_i * M[i*out + j] + b_j, ReLU
    between layers. Pure Python, for tests that pin the compatible layout."""
    at = 0
    shapes = layer_shapes(outputs)
    for k, (o, i) in enumerate(shapes):
        y = [sum(x[ii] * flat[at + ii * o + j] for ii in range(i)) + flat[at + o * i + j] for j in range(o)]
        at += o * i + o
        x = [max(0.0, v) for v in y] if k < len(shapes) - 1 else y
    return x if outputs > 1 else [math.tanh(x[0])]


def convert_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.tasks.ur.export",
        description="Convert a weights file written by the old PyTorch exporter (matrices in (out, in) order, "
        "which the old engine read scrambled) into a corrected compatible file and our explicit file.",
    )
    parser.add_argument("old_file", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder for compat_weights.json and weights.json")
    args = parser.parse_args(argv)
    try:
        obj = json.loads(args.old_file.read_text())
        nets = from_old(obj, str(args.old_file))
    except (OSError, json.JSONDecodeError, WeightsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    provenance = {"converted_from": str(args.old_file), "old_metadata": obj.get("metadata", {})}
    write_json(args.out / "compat_weights.json", to_compat(nets, {"converted_from": str(args.old_file)}))
    write_json(args.out / "weights.json", to_ours(nets, provenance))
    print(json.dumps({"compat": str(args.out / "compat_weights.json"), "ours": str(args.out / "weights.json")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(convert_main())
