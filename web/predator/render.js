// Drawing one field on its canvas: the wrap band around the canvas (the predator lives up to 20
// px past each edge before it wraps, so the band keeps it in sight), the catches of the last
// frames, the predator's trail, the boids (with "what the network sees": brighter where the
// network's last attention layer looks more from its CLS token), and the predator with its heading
// and catch radius. Boids of one colour share one path: a frame issues a handful of fills.

import { CATCH_RADIUS, PREDATOR_BORDER_OFFSET } from "./sim.js";
import { MARK_FRAMES } from "./field.js";

export const BAND = PREDATOR_BORDER_OFFSET; // world units drawn past each edge
export const COLORS = {
  field: "#0d1117",
  band: "#1c2330",
  edge: "#3d4a5c",
  boid: "#58a6ff",
  predator: "#f85149",
  heading: "#ffdcd7",
  catch: "#f2cc60",
  policy: { network: "#f0883e", pursuit: "#a371f7", still: "#8b949e" },
};
// Attention shades, dim to bright: a boid the network ignores is a dark outline of the flock, the
// one it looks at most is near white.
const LEVELS = 8;
const SHADES = Array.from({ length: LEVELS }, (_, i) => {
  const t = i / (LEVELS - 1);
  const mix = (a, b) => Math.round(a + (b - a) * t);
  return `rgb(${mix(28, 255)}, ${mix(48, 244)}, ${mix(78, 214)})`;
});

/** The size of a field's picture in world units (the canvas and its band). */
export const viewSize = (setup) => [setup.width + 2 * BAND, setup.height + 2 * BAND];

function boidPath(ctx, b, k) {
  // A dart along the velocity without trigonometry: unit heading (hx, hy) and its normal.
  const speed = Math.sqrt(b.vel.x * b.vel.x + b.vel.y * b.vel.y) || 1;
  const hx = (b.vel.x / speed) * k;
  const hy = (b.vel.y / speed) * k;
  const { x, y } = b.pos;
  ctx.moveTo(x + hx * 7, y + hy * 7);
  ctx.lineTo(x - hx * 4 - hy * 3.5, y - hy * 4 + hx * 3.5);
  ctx.lineTo(x - hx * 4 + hy * 3.5, y - hy * 4 - hx * 3.5);
  ctx.closePath();
}

/** The smallest and the largest attention weight on a boid left in `field`. */
export function seenRange(field) {
  let least = Infinity;
  let most = 0;
  for (const b of field.state.boids) {
    least = Math.min(least, field.seen[b.id]);
    most = Math.max(most, field.seen[b.id]);
  }
  return [Math.min(least, most), most];
}

function drawBoids(ctx, field, look, k) {
  const { boids } = field.state;
  if (!look) {
    ctx.fillStyle = COLORS.boid;
    ctx.beginPath();
    for (const b of boids) boidPath(ctx, b, k);
    ctx.fill();
    return;
  }
  // Brightness from the boid the network looks at least (dark) to the one it looks at most
  // (near white); the caption gives the two weights, so a flat spread reads as one. One path
  // per shade.
  const [least, most] = seenRange(field);
  const levels = Array.from({ length: LEVELS }, () => []);
  for (const b of boids) {
    const t = most > least ? (field.seen[b.id] - least) / (most - least) : 1;
    levels[Math.min(LEVELS - 1, Math.floor(t * LEVELS))].push(b);
  }
  levels.forEach((group, i) => {
    if (group.length === 0) return;
    ctx.fillStyle = SHADES[i];
    ctx.beginPath();
    for (const b of group) boidPath(ctx, b, k);
    ctx.fill();
  });
}

function drawTrail(ctx, field, k) {
  const points = field.trailPoints();
  const { width, height } = field.setup;
  // Four segments fading towards the oldest; a jump across the canvas (a wrap) breaks the line.
  const parts = 4;
  const per = Math.ceil(points.length / parts);
  ctx.lineWidth = 2 * k;
  ctx.lineCap = "round";
  for (let p = 0; p < parts; p++) {
    const from = p * per;
    const to = Math.min(points.length, from + per + 1);
    if (to - from < 2) continue;
    ctx.strokeStyle = `rgba(248, 81, 73, ${(0.2 + (0.6 * (p + 1)) / parts).toFixed(3)})`;
    ctx.beginPath();
    ctx.moveTo(points[from][0], points[from][1]);
    for (let i = from + 1; i < to; i++) {
      const [x, y] = points[i];
      const [px, py] = points[i - 1];
      if (Math.abs(x - px) > width / 2 || Math.abs(y - py) > height / 2) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    }
    ctx.stroke();
  }
}

function drawMarks(ctx, field, k) {
  ctx.lineWidth = 2 * k;
  for (const m of field.marks) {
    const age = (field.frames - m.frame) / MARK_FRAMES;
    ctx.strokeStyle = `rgba(242, 204, 96, ${(1 - age).toFixed(3)})`;
    ctx.beginPath();
    ctx.arc(m.x, m.y, (6 + 22 * age) * k, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

function drawPredator(ctx, field, k) {
  const { pos, vel } = field.state.predator;
  ctx.strokeStyle = "rgba(248, 81, 73, 0.6)";
  ctx.lineWidth = k;
  ctx.beginPath();
  ctx.arc(pos.x, pos.y, CATCH_RADIUS, 0, 2 * Math.PI); // what it catches
  ctx.stroke();
  ctx.fillStyle = COLORS.predator;
  ctx.beginPath();
  ctx.arc(pos.x, pos.y, 5 * k, 0, 2 * Math.PI);
  ctx.fill();
  const speed = Math.sqrt(vel.x * vel.x + vel.y * vel.y);
  if (speed > 1e-6) {
    // The heading: a pointer as long as the next 12 frames at this speed (at least 14 px).
    const hx = vel.x / speed;
    const hy = vel.y / speed;
    const length = Math.max(5 * k + 12 * speed, 14 * k);
    const tipX = pos.x + hx * length;
    const tipY = pos.y + hy * length;
    ctx.strokeStyle = COLORS.heading;
    ctx.fillStyle = COLORS.heading;
    ctx.lineWidth = 1.5 * k;
    ctx.beginPath();
    ctx.moveTo(pos.x + hx * 5 * k, pos.y + hy * 5 * k);
    ctx.lineTo(tipX, tipY);
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(tipX + hx * 5 * k, tipY + hy * 5 * k);
    ctx.lineTo(tipX - hy * 3.5 * k, tipY + hx * 3.5 * k);
    ctx.lineTo(tipX + hy * 3.5 * k, tipY - hx * 3.5 * k);
    ctx.closePath();
    ctx.fill();
  }
}

/** Draws `field` on `ctx` (a canvas `scale` pixels per world unit); `look`: attention shading. */
export function drawField(ctx, field, scale, look) {
  const { width, height } = field.setup;
  const [vw, vh] = viewSize(field.setup);
  ctx.setTransform(scale, 0, 0, scale, BAND * scale, BAND * scale);
  ctx.fillStyle = COLORS.band;
  ctx.fillRect(-BAND, -BAND, vw, vh);
  ctx.fillStyle = COLORS.field;
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = COLORS.edge;
  ctx.lineWidth = 1 / scale;
  ctx.setLineDash([6 / scale, 6 / scale]);
  ctx.strokeRect(0, 0, width, height);
  ctx.setLineDash([]);
  // Keep drawing inside the band: what lies past it has already wrapped.
  ctx.save();
  ctx.beginPath();
  ctx.rect(-BAND, -BAND, vw, vh);
  ctx.clip();
  // Glyphs keep a legible size on a small screen: world units grow when a unit is under 0.8 px.
  const k = Math.max(1, 0.8 / scale);
  drawMarks(ctx, field, k);
  drawTrail(ctx, field, k);
  drawBoids(ctx, field, look && field.policy === "network" && field.seenFresh, k);
  drawPredator(ctx, field, k);
  ctx.restore();
}
