// The JavaScript transformer against PyTorch: fixtures written by the trainer's exporter
// (make_fixtures.py, run here with the repository's Python) hold a browser weight file and
// PyTorch's float32 actions for observations with 1 to 50 boids; JavaScript (float64) must
// agree to 1e-5. Damaged files are refused naming the field. PYTHON names the interpreter.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { exp, forward, loadTransformer, netAction, tanh, WeightsError } from "../transformer.js";

const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = process.env.PYTHON || join(here, "..", "..", "..", ".venv", "bin", "python");
const TOLERANCE = 1e-5;
let dir;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "ludus-web-fixtures-"));
  execFileSync(PYTHON, [join(here, "make_fixtures.py"), dir]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const read = (name) => readFileSync(join(dir, name), "utf8");

test("the transformer equals PyTorch to 1e-5 on 1 to 50 boids", () => {
  const net = loadTransformer(JSON.parse(read("browser_weights.json")));
  const cases = JSON.parse(read("cases.json"));
  assert.ok(cases.some((c) => c.boids.length === 1) && cases.some((c) => c.boids.length === 50));
  let worst = 0;
  for (const c of cases) {
    const got = forward(net, c);
    worst = Math.max(worst, Math.abs(got[0] - c.action[0]), Math.abs(got[1] - c.action[1]));
  }
  assert.ok(worst <= TOLERANCE, `largest difference ${worst}`);
  assert.ok(cases.some((c) => Math.abs(c.action[0]) > 0.05), "outputs that say something");
});

test("what the network sees: the last block's CLS attention to each boid equals PyTorch's to 1e-6", () => {
  const net = loadTransformer(JSON.parse(read("browser_weights.json")));
  let worst = 0;
  for (const c of JSON.parse(read("cases.json"))) {
    const seen = new Float64Array(c.boids.length);
    const action = forward(net, c, seen);
    assert.deepEqual(action, forward(net, c), "asking for the attention leaves the action's bits alone");
    assert.deepEqual(netAction(net, c, new Float64Array(c.boids.length)), netAction(net, c));
    const total = seen.reduce((a, b) => a + b, 0);
    assert.ok(total > 0 && total < 1, `the boids take part of the weight (the rest is CLS, CTX, predator): ${total}`);
    seen.forEach((w, k) => (worst = Math.max(worst, Math.abs(w - c.seen[k]))));
  }
  assert.ok(worst <= 1e-6, `largest difference ${worst}`);
});

test("the network's action is full thrust in the direction of its output", () => {
  const net = loadTransformer(JSON.parse(read("browser_weights.json")));
  let shortened = 0;
  for (const c of JSON.parse(read("cases.json"))) {
    const [x, y] = forward(net, c);
    const [ax, ay] = netAction(net, c);
    const norm = Math.hypot(x, y);
    if (norm < 0.99) shortened += 1;
    assert.ok(Math.abs(Math.hypot(ax, ay) - 1) < 1e-12, `unit length: ${[ax, ay]}`);
    assert.ok(Math.abs(ax - x / norm) < 1e-12 && Math.abs(ay - y / norm) < 1e-12, "the output's direction");
  }
  assert.ok(shortened > 0, "cases whose output is shorter than full thrust");
});

test("the .js wrapper holds the same network", () => {
  const text = read("predator_model.js");
  const window = {};
  new Function("window", text)(window); // what a script tag does
  const cases = JSON.parse(read("cases.json"));
  const a = loadTransformer(window.TRANSFORMER_PARAMS);
  const b = loadTransformer(JSON.parse(read("browser_weights.json")));
  for (const c of cases.slice(0, 10)) assert.deepEqual(forward(a, c), forward(b, c));
});

function damaged(change) {
  const params = JSON.parse(read("browser_weights.json"));
  change(params);
  return params;
}

const DAMAGE = [
  ["a missing tensor", (p) => delete p.layers[1].qkv_bias, /field 'layers\.1\.qkv_bias' is missing/],
  ["a wrong shape", (p) => p.layers[0].ffn_up_weight.pop(), /field 'layers\.0\.ffn_up_weight' must be a list of 96 rows/],
  ["a short row", (p) => p.boid_projection[3].pop(), /field 'boid_projection\.3' has 3 numbers, expected 4/],
  ["a string", (p) => (p.output_bias[1] = "0.5"), /field 'output_bias' holds a non-finite or non-number value at index 1/],
  ["too large for float32", (p) => (p.cls_embedding[0] = 1e39), /field 'cls_embedding' holds a non-finite/],
  ["heads that do not divide", (p) => (p.n_heads = 5), /field 'n_heads' \(5\) must divide d_model \(48\)/],
  ["too few layers", (p) => p.layers.pop(), /field 'layers' must hold n_layers = 3 layers/],
];

for (const [name, change, message] of DAMAGE) {
  test(`a damaged file is refused naming the field: ${name}`, () => {
    assert.throws(() => loadTransformer(damaged(change)), (e) => e instanceof WeightsError && message.test(e.message));
  });
}

test("exp and tanh, built from + - * / only, agree with the engine's to a few units in the last place", () => {
  let worst = 0;
  // A fixed grid over the whole range the network can reach, plus the table's seams.
  const xs = [0, -0, 1, -1, Math.LN2 / 128, -Math.LN2 / 128, -708, 709];
  for (let i = 0; i <= 200000; i++) xs.push(-708 + (1417 * i) / 200000);
  for (const x of xs) {
    const want = Math.exp(x);
    worst = Math.max(worst, Math.abs(exp(x) - want) / want);
  }
  assert.ok(worst < 2e-15, `largest relative error ${worst}`);
  assert.equal(exp(-800), 0);
  assert.equal(exp(800), Infinity);
  for (const x of [-20, -3, -0.5, -1e-9, 0, 1e-9, 0.5, 3, 20]) assert.ok(Math.abs(tanh(x) - Math.tanh(x)) < 1e-15, `tanh(${x})`);
});
