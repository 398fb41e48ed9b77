// The JavaScript simulation against the Rust generator, bit for bit: for each initial state,
// `rust_gen predator trace` plays the pursuit teacher for up to 1000 steps; this replays the
// same actions and must reach exactly the same positions, velocities and catches at every step.
// The encoder and the teacher are checked on the way: pursuit(encode(state)) is the action.
// RUST_GEN names the binary (default: the repository's release build).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { encode, initialState, pursuit, step } from "../sim.js";

const here = dirname(fileURLToPath(import.meta.url));
const RUST_GEN = process.env.RUST_GEN || join(here, "..", "..", "..", "rust_gen", "target", "release", "rust_gen");
const STEPS = 1000;

function trace(state) {
  const dir = mkdtempSync(join(tmpdir(), "ludus-web-"));
  const file = join(dir, "state.json");
  try {
    writeFileSync(file, JSON.stringify(state));
    const out = execFileSync(RUST_GEN, ["predator", "trace", "--player", "pursuit", "--state", file, "--steps", String(STEPS)], {
      maxBuffer: 1 << 30,
    });
    return JSON.parse(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Boids packed around a resting predator: several are caught in the first step. */
function crowd() {
  const boids = [];
  for (let id = 0; id < 6; id++) boids.push({ pos: { x: 200 + (id % 3) * 2, y: 150 + Math.floor(id / 3) * 2 }, vel: { x: 0, y: 0 }, id });
  return { width: 400, height: 300, boids, predator: { pos: { x: 201, y: 151 }, vel: { x: 0, y: 0 } } };
}

/** Boids and the predator leaving through both edges at once. */
function edges() {
  const boids = [
    { pos: { x: 398, y: 298 }, vel: { x: 3.4, y: 3.4 }, id: 0 },
    { pos: { x: 1, y: 1 }, vel: { x: -3.4, y: -3.4 }, id: 1 },
    { pos: { x: 399, y: 2 }, vel: { x: 3.4, y: -3.4 }, id: 2 },
  ];
  return { width: 400, height: 300, boids, predator: { pos: { x: 419, y: 319 }, vel: { x: 2, y: 2 } } };
}

const STATES = [
  ["one boid", initialState(640, 480, 1, 1)],
  ["50 boids scattered", initialState(1280, 720, 50, 2)],
  ["50 boids clustered", initialState(1280, 720, 50, 3, true)],
  ["200 boids", initialState(800, 600, 200, 4)],
  ["200 boids clustered", initialState(1920, 1080, 200, 5, true)],
  ["several caught in one step", crowd()],
  ["wraps on both axes", edges()],
];
for (let k = 0; k < 15; k++) {
  const [w, h] = [320 + ((k * 97) % 1601), 320 + ((k * 53) % 761)];
  STATES.push([`seeded ${k}`, initialState(w, h, 1 + ((k * 13) % 50), 100 + k, k % 2 === 1)]);
}

const seen = { multiCatch: false, wrapX: false, wrapY: false };

for (const [name, initial] of STATES) {
  test(`the simulation equals the generator's trace: ${name}`, () => {
    const expected = trace(initial);
    const state = structuredClone(expected.initial);
    assert.deepEqual(state, JSON.parse(JSON.stringify(initial)), "the trace starts from our state");
    assert.ok(expected.steps.length > 0);
    expected.steps.forEach((want, k) => {
      assert.deepEqual(pursuit(encode(state)), want.action, `step ${k}: the encoder and pursuit give the trace's action`);
      const before = state.predator.pos;
      const caught = step(state, want.action);
      assert.deepEqual(caught, want.caught, `step ${k}: caught`);
      assert.deepEqual(state.boids, want.boids, `step ${k}: boids`);
      assert.deepEqual(state.predator, want.predator, `step ${k}: predator`);
      seen.multiCatch ||= caught.length > 1;
      seen.wrapX ||= Math.abs(state.predator.pos.x - before.x) > 100;
      seen.wrapY ||= Math.abs(state.predator.pos.y - before.y) > 100;
    });
  });
}

test("the states covered several catches in one step and wraps on both axes", () => {
  assert.equal(STATES.length >= 20, true);
  assert.deepEqual(seen, { multiCatch: true, wrapX: true, wrapY: true });
});
