// The demo page's run without a browser: `node web/predator/tools/run.mjs MODEL SEED BOIDS WIDTH HEIGHT
// FRAMES` prints {"frames", "caught", "state"} after FRAMES frames of the network policy, for the
// browser test to compare with the page.

import { readFileSync } from "node:fs";

import { demoState, encode, step } from "../sim.js";
import { loadTransformer, netAction } from "../transformer.js";

const [model, seed, boids, width, height, frames] = process.argv.slice(2);
const net = loadTransformer(JSON.parse(readFileSync(model, "utf8")));
const state = demoState(Number(width), Number(height), Number(boids), Number(seed) >>> 0);
let caught = 0;
let done = 0;
while (done < Number(frames) && state.boids.length > 0) {
  caught += step(state, netAction(net, encode(state))).length;
  done += 1;
}
process.stdout.write(JSON.stringify({ frames: done, caught, state }));
