// The page's run without a browser: `node web/predator/tools/run.mjs MODEL SEED BOIDS WIDTH HEIGHT
// FRAMES [POLICY...]` plays each policy (default: network) in its own field, as the page does
// (field.js, the same code), and prints {"frames", "caught", "state", "history"} for one policy,
// or {"fields": [...]} of those for several, for the browser test to compare with the page.

import { readFileSync } from "node:fs";

import { Field } from "../field.js";
import { loadTransformer } from "../transformer.js";

const [model, seed, boids, width, height, frames, ...policies] = process.argv.slice(2);
const net = loadTransformer(JSON.parse(readFileSync(model, "utf8")));
const setup = { seed: Number(seed) >>> 0, boids: Number(boids), width: Number(width), height: Number(height), frames: Number(frames) };
const fields = (policies.length > 0 ? policies : ["network"]).map((policy) => {
  const field = new Field(policy, setup);
  field.play(true);
  while (!field.done) field.advance(net);
  return { policy, frames: field.frames, caught: field.caught, state: field.state, history: field.history };
});
process.stdout.write(JSON.stringify(policies.length > 1 ? { fields } : fields[0]));
