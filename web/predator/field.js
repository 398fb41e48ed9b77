// One field of the page: a flock, a predator and the policy that steers it, one step per call,
// with what the drawing needs (the predator's trail, where boids were caught, what the network
// looked at) and the caught count after every frame. No DOM: tools/run.mjs steps the same code
// in Node, so a field's run there is the page's, bit for bit.

import { demoState, encode, pursuit, step } from "./sim.js";
import { netAction } from "./transformer.js";

/** The policies a field can play. "network" needs a loaded network; without one the field
 *  plays pursuit and says so. */
export const POLICIES = ["network", "pursuit", "still"];
/** The page's setup unless the URL says otherwise: a fixed canvas, so a seed is the same run on
 *  every screen (the fields are scaled to fit), and a round of 3,000 frames. */
export const DEFAULT_SETUP = { seed: 1, boids: 50, width: 960, height: 640, frames: 3000 };
export const TRAIL = 90; // predator positions kept for its trail
export const MARK_FRAMES = 45; // how long a catch stays marked

export class Field {
  /** `wanted`: the policy asked for; `policy`: the one that plays (see `play`). */
  constructor(wanted, setup) {
    this.wanted = wanted;
    this.policy = wanted === "network" ? "pursuit" : wanted;
    this.reset(setup);
  }

  /** Which policy plays: the wanted one, or pursuit when the network is wanted but absent. */
  play(hasNetwork) {
    this.policy = this.wanted === "network" && !hasNetwork ? "pursuit" : this.wanted;
  }

  reset(setup) {
    this.setup = { ...setup };
    this.state = demoState(setup.width, setup.height, setup.boids, setup.seed >>> 0);
    this.boidsAtStart = this.state.boids.length;
    this.frames = 0;
    this.caught = 0;
    this.history = [0]; // caught after each frame
    this.trail = new Float64Array(2 * TRAIL);
    this.trailLength = 0;
    this.trailHead = 0;
    this.marks = []; // {x, y, frame} of recent catches
    this.seen = new Float64Array(this.boidsAtStart); // attention per boid, by id
    this.seenFresh = false; // whether `seen` is from the last frame
    this.buffer = new Float64Array(this.boidsAtStart);
    this.inferenceMs = [];
    this.pushTrail();
  }

  get done() {
    return this.frames >= this.setup.frames || this.state.boids.length === 0;
  }

  /** One frame: the policy acts, the world steps. `look`: also record what the network sees. */
  advance(net, look = false) {
    const { state } = this;
    const obs = encode(state);
    let action;
    if (this.policy === "network") {
      const started = performance.now();
      action = netAction(net, obs, look ? this.buffer : null);
      this.inferenceMs.push(performance.now() - started);
      if (look) for (let k = 0; k < state.boids.length; k++) this.seen[state.boids[k].id] = this.buffer[k];
      this.seenFresh = look;
    } else {
      action = this.policy === "pursuit" ? pursuit(obs) : [0, 0];
      this.seenFresh = false;
    }
    const before = state.boids.slice();
    const caught = step(state, action);
    this.frames += 1;
    if (caught.length > 0) {
      this.caught += caught.length;
      for (const id of caught) {
        const boid = before.find((b) => b.id === id);
        this.marks.push({ x: boid.pos.x, y: boid.pos.y, frame: this.frames });
      }
    }
    while (this.marks.length > 0 && this.frames - this.marks[0].frame >= MARK_FRAMES) this.marks.shift();
    this.history.push(this.caught);
    this.pushTrail();
  }

  /** What the network sees in the current state, without a step (for a paused or finished
   *  field when "what the network sees" is switched on). */
  observe(net) {
    if (this.policy !== "network" || this.state.boids.length === 0) return;
    netAction(net, encode(this.state), this.buffer);
    this.state.boids.forEach((b, k) => (this.seen[b.id] = this.buffer[k]));
    this.seenFresh = true;
  }

  pushTrail() {
    const { pos } = this.state.predator;
    this.trail[2 * this.trailHead] = pos.x;
    this.trail[2 * this.trailHead + 1] = pos.y;
    this.trailHead = (this.trailHead + 1) % TRAIL;
    this.trailLength = Math.min(this.trailLength + 1, TRAIL);
  }

  /** The trail's positions, oldest first, as [x, y] pairs. */
  trailPoints() {
    const out = [];
    for (let i = this.trailLength; i > 0; i--) {
      const at = (this.trailHead - i + TRAIL) % TRAIL;
      out.push([this.trail[2 * at], this.trail[2 * at + 1]]);
    }
    return out;
  }
}
