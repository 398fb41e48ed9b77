// The boids simulation, the encoder and the closest-pursuit teacher (docs/predator.md, sections
// 2-7). Every operation is the Rust generator's, in the same order, in float64 (JavaScript
// numbers), so a run here is bit-identical to `rust_gen predator trace` from the same state and
// actions. `Math.sqrt` is correctly rounded, as Rust's is; nothing else transcendental is used.

export const BOID_MAX_SPEED = 3.5;
export const BOID_MAX_FORCE = 0.1;
export const DESIRED_SEPARATION = 40;
export const NEIGHBOR_DISTANCE = 60;
export const BOID_BORDER_OFFSET = 10;
export const PREDATOR_MAX_SPEED = 2;
export const PREDATOR_FORCE = 0.2;
export const PREDATOR_SIZE = 18;
export const CATCH_RADIUS = 0.7 * PREDATOR_SIZE;
export const PREDATOR_RANGE = 80;
export const PREDATOR_TURN_FACTOR = 0.3;
export const PREDATOR_BORDER_OFFSET = 20;
export const SEPARATION_WEIGHT = 2;
export const COHESION_WEIGHT = 1;
export const ALIGNMENT_WEIGHT = 1;
export const EPSILON = 1e-7;
export const MAX_DISTANCE = 1000; // position normaliser of the encoding
export const VELOCITY_SCALE = BOID_MAX_SPEED;

// ---- vectors: {x, y}, a new object per operation, component by component -------------------

const v = (x, y) => ({ x, y });
const add = (a, b) => v(a.x + b.x, a.y + b.y);
const sub = (a, b) => v(a.x - b.x, a.y - b.y);
const mul = (a, k) => v(a.x * k, a.y * k);
const div = (a, k) => v(a.x / k, a.y / k);
const norm = (a) => Math.sqrt(a.x * a.x + a.y * a.y);

/** The fast magnitude: 0.96 * max(|x|, |y|) + 0.398 * min(|x|, |y|). */
export function fm(a) {
  const ax = Math.abs(a.x);
  const ay = Math.abs(a.y);
  return 0.96 * Math.max(ax, ay) + 0.398 * Math.min(ax, ay);
}

function limit(a, m) {
  const f = fm(a);
  return f > m ? mul(a, m / f) : a;
}

function setMag(a, m) {
  const f = fm(a);
  return f > 0 ? mul(a, m / f) : a;
}

function fastNormalize(a) {
  const f = fm(a);
  return f > 0 ? div(a, f) : a;
}

function normalize(a) {
  const n = norm(a);
  return n > 0 ? div(a, n) : a;
}

export function wrap(x, size, offset) {
  if (x > size + offset) return -offset;
  if (x < -offset) return size + offset;
  return x;
}

const wrap2 = (p, w, h, offset) => v(wrap(p.x, w, offset), wrap(p.y, h, offset));
const clampUnit = (a) => Math.min(1, Math.max(-1, a));
const withinCatch = (boid, predator) => norm(sub(boid, predator)) < CATCH_RADIUS;

// ---- one step ---------------------------------------------------------------------------------

/** Boid i's steering, the boids before it already moved this step; `threat` is the predator's
 *  position at the start of the step. */
function acceleration(boids, i, threat) {
  const me = boids[i];
  let centre = v(0, 0);
  let away = v(0, 0);
  let heading = v(0, 0);
  let cohesionCount = 0;
  let separationCount = 0;
  let alignmentCount = 0;
  for (let j = 0; j < boids.length; j++) {
    if (j === i) continue;
    const other = boids[j];
    const offset = sub(me.pos, other.pos);
    // Past sqrt(3601) > 60 no rule applies: skip the square root (exact, as in Rust).
    if (offset.x * offset.x + offset.y * offset.y > NEIGHBOR_DISTANCE * NEIGHBOR_DISTANCE + 1) continue;
    const d = norm(offset) + EPSILON;
    if (d <= NEIGHBOR_DISTANCE) {
      centre = add(centre, other.pos);
      cohesionCount += 1;
    }
    if (d > 0 && d < DESIRED_SEPARATION) {
      away = add(away, div(normalize(offset), d));
      separationCount += 1;
    }
    if (d > 0 && d < NEIGHBOR_DISTANCE) {
      heading = add(heading, other.vel);
      alignmentCount += 1;
    }
  }
  const steer = (desired) => limit(sub(setMag(desired, BOID_MAX_SPEED), me.vel), BOID_MAX_FORCE);
  const cohesion = cohesionCount > 0 ? steer(sub(div(centre, cohesionCount), me.pos)) : v(0, 0);
  const separation = separationCount > 0 ? steer(div(away, separationCount)) : v(0, 0);
  const alignment = alignmentCount > 0 ? steer(div(heading, alignmentCount)) : v(0, 0);
  const dp = norm(sub(me.pos, threat)) + EPSILON;
  let avoidance = v(0, 0);
  if (dp < PREDATOR_RANGE) {
    const push = ((PREDATOR_RANGE - dp) / PREDATOR_RANGE) * PREDATOR_TURN_FACTOR;
    avoidance = limit(mul(fastNormalize(sub(me.pos, threat)), push), BOID_MAX_FORCE * 1.5);
  }
  return add(add(add(mul(cohesion, COHESION_WEIGHT), mul(separation, SEPARATION_WEIGHT)), mul(alignment, ALIGNMENT_WEIGHT)), avoidance);
}

/** One step of `state` ({width, height, boids: [{pos, vel, id}], predator: {pos, vel}}) in place
 *  with the action [ax, ay]; returns the ids of the boids caught, in array order. */
export function step(state, action) {
  const { width: w, height: h, boids } = state;
  const threat = state.predator.pos;
  for (let i = 0; i < boids.length; i++) {
    const a = acceleration(boids, i, threat);
    const boid = boids[i];
    boid.vel = limit(add(boid.vel, a), BOID_MAX_SPEED);
    boid.pos = wrap2(add(boid.pos, boid.vel), w, h, BOID_BORDER_OFFSET);
  }
  const push = v(clampUnit(action[0]) * PREDATOR_FORCE, clampUnit(action[1]) * PREDATOR_FORCE);
  const p = state.predator;
  p.vel = limit(add(p.vel, push), PREDATOR_MAX_SPEED);
  p.pos = wrap2(add(p.pos, p.vel), w, h, PREDATOR_BORDER_OFFSET);
  const caught = boids.filter((b) => withinCatch(b.pos, p.pos)).map((b) => b.id);
  if (caught.length > 0) {
    // Descending index order, so the survivors keep their relative order.
    for (let i = boids.length - 1; i >= 0; i--) {
      if (withinCatch(boids[i].pos, p.pos)) boids.splice(i, 1);
    }
  }
  return caught;
}

// ---- what the network sees --------------------------------------------------------------------

function wrappedDelta(d, size) {
  if (Math.abs(d) > size / 2) return d > 0 ? d - size : d + size;
  return d;
}

/** The observation: context [2], predator [4], boids [[4], ...] in array order. */
export function encode(state) {
  const p = state.predator;
  return {
    context: [state.width / MAX_DISTANCE, state.height / MAX_DISTANCE],
    predator: [clampUnit(p.vel.x / VELOCITY_SCALE), clampUnit(p.vel.y / VELOCITY_SCALE), 0, 0],
    boids: state.boids.map((b) => [
      wrappedDelta(b.pos.x - p.pos.x, state.width) / MAX_DISTANCE,
      wrappedDelta(b.pos.y - p.pos.y, state.height) / MAX_DISTANCE,
      clampUnit(b.vel.x / VELOCITY_SCALE),
      clampUnit(b.vel.y / VELOCITY_SCALE),
    ]),
  };
}

/** The old teacher: the unit vector to the nearest encoded boid (first strict minimum), or
 *  [0, 0] with no boid or one closer than 0.001. */
export function pursuit(obs) {
  let best = null;
  for (const b of obs.boids) {
    const dist = Math.sqrt(b[0] * b[0] + b[1] * b[1]);
    if (best === null || dist < best[0]) best = [dist, b[0], b[1]];
  }
  if (best === null || best[0] < 0.001) return [0, 0];
  return [best[1] / best[0], best[2] / best[0]];
}

// ---- seeded initial states (the page's own; not the generator's random stream) ----------------

/** mulberry32: a small seeded generator of floats in [0, 1). */
export function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A state like the training distribution's: `count` boids, scattered or clustered. */
export function initialState(width, height, count, seed, clustered = false) {
  const r = random(seed);
  // A uniform direction without trigonometry (Math.cos and Math.sin differ between engines in
  // the last bit; a point in the unit disc, scaled, needs only the exact sqrt).
  const heading = (speed) => {
    for (;;) {
      const x = r() * 2 - 1;
      const y = r() * 2 - 1;
      const n = Math.sqrt(x * x + y * y);
      if (n > 0 && n <= 1) return v((x / n) * speed, (y / n) * speed);
    }
  };
  const boids = [];
  if (clustered) {
    const c = v(r() * width, r() * height);
    for (let id = 0; id < count; id++) boids.push({ pos: v(c.x + r() * 100 - 50, c.y + r() * 100 - 50), vel: heading(1), id });
    return { width, height, boids, predator: { pos: c, vel: v(r() * 2 - 1, r() * 2 - 1) } };
  }
  for (let id = 0; id < count; id++) boids.push({ pos: v(r() * width, r() * height), vel: heading(r() * BOID_MAX_SPEED), id });
  return { width, height, boids, predator: { pos: v(r() * width, r() * height), vel: heading(r() * PREDATOR_MAX_SPEED) } };
}

/** The demo page's state for a seed (odd seeds clustered), so a run can be repeated anywhere. */
export function demoState(width, height, count, seed) {
  return initialState(width, height, count, seed, seed % 2 === 1);
}
