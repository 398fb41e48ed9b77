"""The predator transformer across languages and files: PyTorch (float32, eval mode) and the
Rust inference (`rust_gen predator infer`) agree to TOLERANCE on our file, the browser file and
its `.js` wrapper, for random and real inputs with 1 to 50 boids. The two mistakes of the old
exporter (the attention output transposed, the projection biases dropped) must break that
agreement, so the test would catch them. Padding with the key mask changes nothing; the readers
refuse damaged files naming the field."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load as load_safetensors

from trainer.tasks.predator.export import WeightsError, from_browser, from_js, from_ours, to_browser, to_js, to_ours
from trainer.tasks.predator.model import PredatorNet

TOLERANCE = 1e-5  # float32 in both, but different summation orders


def perturbed_net(seed: int = 0) -> PredatorNet:
    """A network whose every parameter matters: PyTorch's initialisation leaves biases small and
    the LayerNorms at identity, which would hide a dropped bias or a swapped scale."""
    torch.manual_seed(seed)
    net = PredatorNet()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 1 or "embedding" in name:  # biases, LayerNorms, embeddings
                p.add_(torch.randn_like(p) * 0.2)
    return net.eval()


def random_observations(count: int, seed: int) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(count):
        boids = 1 + k % 50
        out.append(
            {
                "context": (0.32 + torch.rand(2, generator=g) * 1.6).tolist(),
                "predator": torch.cat([torch.rand(2, generator=g) * 2 - 1, torch.zeros(2)]).tolist(),
                "boids": torch.cat([torch.rand(boids, 2, generator=g) - 0.5, torch.rand(boids, 2, generator=g) * 2 - 1], dim=1).tolist(),
            }
        )
    return out


def real_observations(generator: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """Observations from a real shard (pursuit episodes with up to 50 boids)."""
    cmd = [str(generator), "predator", "generate", "--episodes", "4", "--teacher", "pursuit", "--steps", "200", "--out", str(tmp_path / "shard")]
    subprocess.run(cmd, check=True, capture_output=True)
    t = load_safetensors(next((tmp_path / "shard").glob("*.safetensors")).read_bytes())
    rows = torch.linspace(0, len(t["count"]) - 1, 60).long().tolist()
    return [
        {"context": t["context"][i].tolist(), "predator": t["predator"][i].tolist(), "boids": t["boids"][i, : int(t["count"][i])].tolist()}
        for i in rows
    ]


@torch.no_grad()
def torch_actions(net: PredatorNet, observations: list[dict[str, Any]]) -> torch.Tensor:
    return torch.stack([net(torch.tensor([o["context"]]), torch.tensor([o["predator"]]), torch.tensor([o["boids"]]))[0] for o in observations])


def rust_actions(generator: Path, model_file: Path, observations: list[dict[str, Any]]) -> torch.Tensor:
    lines = "".join(json.dumps(o) + "\n" for o in observations)
    cmd = [str(generator), "predator", "infer", "--model", str(model_file)]
    proc = subprocess.run(cmd, input=lines, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return torch.tensor([json.loads(line) for line in proc.stdout.splitlines()])


def write(tmp_path: Path, name: str, obj: Any) -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def exported_files(net: PredatorNet, tmp_path: Path) -> dict[str, Path]:
    browser = to_browser(net)
    return {
        "weights.json": write(tmp_path, "weights.json", to_ours(net, {"run_id": "test"})),
        "browser_weights.json": write(tmp_path, "browser_weights.json", browser),
        "predator_model.js": write(tmp_path, "predator_model.js", to_js(browser)),
    }


def test_the_default_size_has_the_documented_parameter_counts() -> None:
    net = PredatorNet()
    assert sum(p.numel() for p in net.parameters()) == 71_954

    def numbers(x: Any) -> int:
        if isinstance(x, list):
            return sum(numbers(v) for v in x)
        if isinstance(x, dict):
            return sum(numbers(v) for v in x.values())
        return 1

    browser = to_browser(net)
    assert numbers({k: v for k, v in browser.items() if k not in ("d_model", "n_heads", "n_layers", "ffn_hidden")}) == 71_810


@pytest.mark.parametrize("inputs", ["random", "real"])
def test_pytorch_and_rust_agree_on_every_export(generator: Path, tmp_path: Path, inputs: str) -> None:
    net = perturbed_net()
    observations = random_observations(100, seed=1) if inputs == "random" else real_observations(generator, tmp_path)
    assert {len(o["boids"]) for o in observations} >= ({1, 50} if inputs == "random" else set()), "1 to 50 boids"
    want = torch_actions(net, observations)
    assert want.abs().max() > 0.05 and want.abs().min() < 0.95, "outputs that say something, not saturated"
    for name, path in exported_files(net, tmp_path).items():
        got = rust_actions(generator, path, observations)
        assert (got - want).abs().max() <= TOLERANCE, name


def test_the_old_exporters_mistakes_break_parity(generator: Path, tmp_path: Path) -> None:
    net = perturbed_net(1)
    observations = random_observations(50, seed=2)
    want = torch_actions(net, observations)
    transposed = to_browser(net)
    for layer in transposed["layers"]:
        layer["attn_out_weight"] = [list(col) for col in zip(*layer["attn_out_weight"], strict=True)]
    unfolded = to_browser(net)
    for token, projection in (("ctx", net.ctx_projection), ("predator", net.predator_projection), ("boid", net.boid_projection)):
        unfolded["type_embeddings"][token] = [a - b for a, b in zip(unfolded["type_embeddings"][token], projection.bias.tolist(), strict=True)]
    for name, broken in (("attention output transposed", transposed), ("projection biases left out", unfolded)):
        got = rust_actions(generator, write(tmp_path, "broken.json", broken), observations)
        assert (got - want).abs().max() > 100 * TOLERANCE, name


def test_exports_read_back_into_the_same_network(tmp_path: Path) -> None:
    net = perturbed_net(2)
    observations = random_observations(20, seed=3)
    want = torch_actions(net, observations)
    files = exported_files(net, tmp_path)
    ours = from_ours(json.loads(files["weights.json"].read_text()), "weights.json")
    browser = from_browser(json.loads(files["browser_weights.json"].read_text()), "browser_weights.json")
    js = from_browser(from_js(files["predator_model.js"].read_text(), "predator_model.js"), "predator_model.js")
    assert torch.equal(torch_actions(ours, observations), want), "our file keeps every tensor exactly"
    for model in (browser, js):
        assert (torch_actions(model, observations) - want).abs().max() <= TOLERANCE  # folded biases round once more


@torch.no_grad()
def test_padding_with_the_key_mask_changes_nothing() -> None:
    net = perturbed_net(3)
    observations = random_observations(50, seed=4)
    want = torch_actions(net, observations)
    boids = torch.full((len(observations), 50, 4), 7.0)  # padding that would matter if it were read
    count = torch.tensor([len(o["boids"]) for o in observations])
    for i, o in enumerate(observations):
        boids[i, : len(o["boids"])] = torch.tensor(o["boids"])
    context = torch.tensor([o["context"] for o in observations])
    predator = torch.tensor([o["predator"] for o in observations])
    assert (net(context, predator, boids, count) - want).abs().max() <= TOLERANCE
    assert (net(context, predator, boids, None) - want).abs().max() > 100 * TOLERANCE, "without the mask, padding acts"


def damaged(obj: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    at = out
    for key in path[:-1]:
        at = at[key]
    if value is KeyError:
        del at[path[-1]]
    else:
        at[path[-1]] = value
    return out


BROWSER_DAMAGE = [
    (["layers", 1, "qkv_bias"], KeyError, "layers.1.qkv_bias' is missing"),
    (["layers", 0, "ffn_up_weight"], [[0.0] * 48] * 95, "layers.0.ffn_up_weight' has shape"),
    (["output_bias"], [0.0, float("nan")], "output_bias' holds a non-finite"),
    (["output_bias"], [0.0, 1e39], "output_bias' holds a non-finite"),
    (["n_heads"], 5, "n_heads"),
]


@pytest.mark.parametrize(("path", "value", "message"), BROWSER_DAMAGE)
def test_damaged_browser_files_are_refused_naming_the_field(generator: Path, tmp_path: Path, path: list[Any], value: Any, message: str) -> None:
    bad = damaged(to_browser(PredatorNet()), path, value)
    with pytest.raises(WeightsError, match=message.split("'")[0].replace(".", r"\.")):
        from_browser(json.loads(json.dumps(bad)), "bad.json")
    proc = subprocess.run(
        [str(generator), "predator", "infer", "--model", str(write(tmp_path, "bad.json", bad))], input="", capture_output=True, text=True, check=False
    )
    # NaN is not JSON at all, and Rust's parser says so (with the file's name).
    what = "not JSON" if value is not KeyError and "NaN" in json.dumps(value) else str(path[-1])
    assert proc.returncode != 0 and "bad.json" in proc.stderr and what in proc.stderr, proc.stderr


def test_our_file_must_say_what_it_is() -> None:
    ours = to_ours(PredatorNet(), {})
    with pytest.raises(WeightsError, match="'format'/'task'"):
        from_ours({**ours, "task": "ur"}, "w.json")
    with pytest.raises(WeightsError, match=r"field 'tensors\.ctx_projection_bias' is missing"):
        from_ours(damaged(ours, ["tensors", "ctx_projection_bias"], KeyError), "w.json")
