// The predator transformer (docs/predator.md, sections 8 and 9) for the browser: reads the
// browser weight file (or `window.TRANSFORMER_PARAMS` from `predator_model.js`), checks every
// field, and runs one forward pass per observation in float64. A wrong file is an error that
// names the field; there is no silent fallback.

export class WeightsError extends Error {
  constructor(message) {
    super(message);
    this.name = "WeightsError";
  }
}

const LAYER_FIELDS = [
  // name, rows, cols ("d", "3d", "f" or 0 for a vector)
  ["ln_scale", "d", 0],
  ["ln_bias", "d", 0],
  ["qkv_weight", "3d", "d"],
  ["qkv_bias", "3d", 0],
  ["attn_out_weight", "d", "d"],
  ["attn_out_bias", "d", 0],
  ["ffn_ln_scale", "d", 0],
  ["ffn_ln_bias", "d", 0],
  ["ffn_gate_weight", "f", "d"],
  ["ffn_gate_bias", "f", 0],
  ["ffn_up_weight", "f", "d"],
  ["ffn_up_bias", "f", 0],
  ["ffn_down_weight", "d", "f"],
  ["ffn_down_bias", "d", 0],
];

const F32_MAX = 3.4028234663852886e38;

function vector(value, n, path) {
  if (!Array.isArray(value)) throw new WeightsError(`field '${path}' must be a list of ${n} numbers`);
  if (value.length !== n) throw new WeightsError(`field '${path}' has ${value.length} numbers, expected ${n}`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = value[i];
    if (typeof x !== "number" || !Number.isFinite(x) || Math.abs(x) > F32_MAX) {
      throw new WeightsError(`field '${path}' holds a non-finite or non-number value at index ${i}`);
    }
    out[i] = x;
  }
  return out;
}

/** A [rows][cols] matrix (PyTorch's Linear.weight, [out][in]) as one row-major array. */
function matrix(value, rows, cols, path) {
  if (!Array.isArray(value) || value.length !== rows) throw new WeightsError(`field '${path}' must be a list of ${rows} rows`);
  const out = new Float64Array(rows * cols);
  value.forEach((row, r) => out.set(vector(row, cols, `${path}.${r}`), r * cols));
  return out;
}

function count(obj, name) {
  const n = obj[name];
  if (!Number.isInteger(n) || n < 1 || n > 4096) throw new WeightsError(`field '${name}' must be a whole number in 1..4096`);
  return n;
}

function field(obj, path) {
  let at = obj;
  for (const part of path.split(".")) {
    if (at === null || typeof at !== "object" || !(part in at)) throw new WeightsError(`field '${path}' is missing`);
    at = at[part];
  }
  return at;
}

/** The network from a browser weight object; throws a WeightsError naming the field. */
export function loadTransformer(params) {
  if (params === null || typeof params !== "object" || Array.isArray(params)) throw new WeightsError("the weights must be a JSON object");
  const d = count(params, "d_model");
  const heads = count(params, "n_heads");
  const nLayers = count(params, "n_layers");
  const f = count(params, "ffn_hidden");
  if (d % heads !== 0) throw new WeightsError(`field 'n_heads' (${heads}) must divide d_model (${d})`);
  const size = { d, "3d": 3 * d, f };
  const layers = field(params, "layers");
  if (!Array.isArray(layers) || layers.length !== nLayers) throw new WeightsError(`field 'layers' must hold n_layers = ${nLayers} layers`);
  const net = {
    d,
    heads,
    f,
    cls: vector(field(params, "cls_embedding"), d, "cls_embedding"),
    types: {},
    ctx: matrix(field(params, "ctx_projection"), d, 2, "ctx_projection"),
    pred: matrix(field(params, "predator_projection"), d, 4, "predator_projection"),
    boid: matrix(field(params, "boid_projection"), d, 4, "boid_projection"),
    layers: [],
    out: matrix(field(params, "output_weight"), 2, d, "output_weight"),
    outBias: vector(field(params, "output_bias"), 2, "output_bias"),
    work: null, // buffers for the forward pass, made on first use
  };
  for (const t of ["cls", "ctx", "predator", "boid"]) net.types[t] = vector(field(params, `type_embeddings.${t}`), d, `type_embeddings.${t}`);
  layers.forEach((layer, i) => {
    const l = {};
    for (const [name, rows, cols] of LAYER_FIELDS) {
      const path = `layers.${i}.${name}`;
      l[name] = cols ? matrix(field(params, path), size[rows], size[cols], path) : vector(field(params, path), size[rows], path);
    }
    net.layers.push(l);
  });
  return net;
}

// ---- the forward pass -------------------------------------------------------------------------
// Speed: weights and activations are flat Float64Arrays; the work buffers live with the network
// and grow with the flock, so a frame allocates almost nothing; matrix products take two rows of
// the weights and two tokens at a time (each load serves two products). Every sum runs in the same
// order as a plain dot product, so the results are those of the straightforward loops, bit for bit.

/** y = W x + b for one input vector (`cols` numbers of `xs` from `at`), written at `outAt`. */
function project(w, b, xs, at, cols, out, outAt) {
  const rows = b.length;
  for (let r = 0; r < rows; r++) {
    let s = b[r];
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += w[base + c] * xs[at + c];
    out[outAt + r] = s;
  }
}

/** out[t] = W xs[t] + b for the first n rows of xs ([n][cols]); W is [rows][cols] row-major. */
function linear(w, b, xs, n, cols, out) {
  const rows = b.length;
  let t = 0;
  for (; t + 3 < n; t += 4) {
    const x0 = t * cols;
    const x1 = x0 + cols;
    const x2 = x1 + cols;
    const x3 = x2 + cols;
    let r = 0;
    for (; r + 1 < rows; r += 2) {
      const w0 = r * cols;
      const w1 = w0 + cols;
      let s00 = b[r];
      let s01 = s00;
      let s02 = s00;
      let s03 = s00;
      let s10 = b[r + 1];
      let s11 = s10;
      let s12 = s10;
      let s13 = s10;
      for (let c = 0; c < cols; c++) {
        const v0 = w[w0 + c];
        const v1 = w[w1 + c];
        const a0 = xs[x0 + c];
        const a1 = xs[x1 + c];
        const a2 = xs[x2 + c];
        const a3 = xs[x3 + c];
        s00 += v0 * a0;
        s01 += v0 * a1;
        s02 += v0 * a2;
        s03 += v0 * a3;
        s10 += v1 * a0;
        s11 += v1 * a1;
        s12 += v1 * a2;
        s13 += v1 * a3;
      }
      const o = t * rows + r;
      out[o] = s00;
      out[o + rows] = s01;
      out[o + 2 * rows] = s02;
      out[o + 3 * rows] = s03;
      out[o + 1] = s10;
      out[o + rows + 1] = s11;
      out[o + 2 * rows + 1] = s12;
      out[o + 3 * rows + 1] = s13;
    }
    if (r < rows) for (let i = 0; i < 4; i++) project(w.subarray(r * cols), b.subarray(r), xs, x0 + i * cols, cols, out, (t + i) * rows + r);
  }
  for (; t < n; t++) project(w, b, xs, t * cols, cols, out, t * rows);
}

function layerNorm(xs, at, d, scale, bias, out) {
  let mean = 0;
  for (let i = 0; i < d; i++) mean += xs[at + i];
  mean /= d;
  let variance = 0;
  for (let i = 0; i < d; i++) variance += (xs[at + i] - mean) * (xs[at + i] - mean);
  const inv = 1 / Math.sqrt(variance / d + 1e-5);
  for (let i = 0; i < d; i++) out[at + i] = (xs[at + i] - mean) * inv * scale[i] + bias[i];
}

// exp and tanh from + - * / only: engines' exponentials differ in the last bit (Node 20 and
// Chromium disagree on about 1 value in 10), and the page must compute exactly what Node does.
const LN2_HI = 6.93147180369123816490e-1;
const LN2_LO = 1.90821492927058770002e-10;
/** e^x by its Taylor series (24 terms, exact to rounding for |x| < 0.7): builds the table. */
function expSeries(x) {
  let term = 1;
  let sum = 1;
  for (let n = 1; n < 24; n++) {
    term *= x / n;
    sum += term;
  }
  return sum;
}
/** 2^(j/64) for j in 0..63. */
const POW2_FRACTION = Float64Array.from({ length: 64 }, (_, j) => expSeries((j / 64) * Math.LN2));
/** 2^k for every integer k in [-1022, 1023] at index k + 1022, each built from its bits. */
const POW2 = (() => {
  const bits = new DataView(new ArrayBuffer(8));
  const table = new Float64Array(2046);
  for (let k = -1022; k <= 1023; k++) {
    bits.setUint32(0, (k + 1023) << 20);
    table[k + 1022] = bits.getFloat64(0);
  }
  return table;
})();

// Adding and subtracting 1.5 * 2^52 rounds a double of magnitude below 2^51 to the nearest
// integer (ties to even) with two exact IEEE operations: cheaper than Math.round.
const ROUNDER = 6755399441055744;

/**
 * e^x to a few units in the last place: x = (64k + j) ln 2 / 64 + r with |r| <= ln 2 / 128, so
 * e^x = 2^k 2^(j/64) e^r, and seven terms of e^r's series are exact to rounding. The softmax
 * calls this once per pair of tokens, so it is kept short. Outside [-708, 709] it returns 0 or
 * Infinity (the network only ever needs x <= 0).
 */
export function exp(x) {
  if (x > 709) return Infinity;
  if (x < -708) return 0;
  const n = x * (64 / Math.LN2) + ROUNDER - ROUNDER;
  // LN2_HI has 32 trailing zero bits, so n * LN2_HI / 64 is exact and r keeps its digits.
  const r = x - n * (LN2_HI / 64) - n * (LN2_LO / 64);
  const p = 1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720))))));
  const i = n | 0;
  return POW2[(i >> 6) + 1022] * (POW2_FRACTION[i & 63] * p);
}

export function tanh(x) {
  const t = exp(-2 * Math.abs(x));
  const y = (1 - t) / (1 + t);
  return x < 0 ? -y : y;
}

/** erf to about 1e-7 (Numerical Recipes' erfc, Chebyshev fit): JavaScript has no Math.erf. */
function erf(x) {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const erfc = t * exp(poly);
  return x >= 0 ? 1 - erfc : erfc - 1;
}

const gelu = (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** Buffers for `tokens` tokens, kept on the network and grown when a flock is larger. */
function workspace(net, tokens) {
  if (net.work === null || net.work.tokens < tokens) {
    const { d, f } = net;
    const hd = d / net.heads;
    const n = (size) => new Float64Array(tokens * size);
    net.work = { tokens, x: n(d), h: n(d), qkv: n(3 * d), kv: n(2 * d), att: n(d), tmp: n(d), gate: n(f), up: n(f), scores: n(4), sums: new Float64Array(4), k: n(hd), v: n(hd), seen: n(1) };
  }
  return net.work;
}

/**
 * Raw scores q.k of four queries (at q0..q3 in qkv) against every key (k: [tokens][hd]), two keys
 * at a time, into four rows of `scores`: eight independent sums keep the processor busy.
 */
function scoreBlock(qkv, q0, q1, q2, q3, k, hd, tokens, scores) {
  let u = 0;
  for (; u + 1 < tokens; u += 2) {
    const ka = u * hd;
    const kb = ka + hd;
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    for (let c = 0; c < hd; c++) {
      const x = k[ka + c];
      const y = k[kb + c];
      const v0 = qkv[q0 + c];
      const v1 = qkv[q1 + c];
      const v2 = qkv[q2 + c];
      const v3 = qkv[q3 + c];
      a0 += v0 * x;
      a1 += v1 * x;
      a2 += v2 * x;
      a3 += v3 * x;
      b0 += v0 * y;
      b1 += v1 * y;
      b2 += v2 * y;
      b3 += v3 * y;
    }
    scores[u] = a0;
    scores[tokens + u] = a1;
    scores[2 * tokens + u] = a2;
    scores[3 * tokens + u] = a3;
    scores[u + 1] = b0;
    scores[tokens + u + 1] = b1;
    scores[2 * tokens + u + 1] = b2;
    scores[3 * tokens + u + 1] = b3;
  }
  for (; u < tokens; u++) {
    const ka = u * hd;
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (let c = 0; c < hd; c++) {
      const x = k[ka + c];
      a0 += qkv[q0 + c] * x;
      a1 += qkv[q1 + c] * x;
      a2 += qkv[q2 + c] * x;
      a3 += qkv[q3 + c] * x;
    }
    scores[u] = a0;
    scores[tokens + u] = a1;
    scores[2 * tokens + u] = a2;
    scores[3 * tokens + u] = a3;
  }
}

/** Four rows of softmax numerators times the values (v: [hd][tokens]), into out0..out3. */
function weightedValues(scores, v, hd, tokens, sums, att, out0, out1, out2, out3) {
  let c = 0;
  // Two value columns at a time: each score read serves two sums (eight in flight).
  for (; c + 1 < hd; c += 2) {
    const va = c * tokens;
    const vb = va + tokens;
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    for (let u = 0; u < tokens; u++) {
      const x = v[va + u];
      const y = v[vb + u];
      const p0 = scores[u];
      const p1 = scores[tokens + u];
      const p2 = scores[2 * tokens + u];
      const p3 = scores[3 * tokens + u];
      a0 += p0 * x;
      a1 += p1 * x;
      a2 += p2 * x;
      a3 += p3 * x;
      b0 += p0 * y;
      b1 += p1 * y;
      b2 += p2 * y;
      b3 += p3 * y;
    }
    att[out0 + c] = a0 / sums[0];
    att[out1 + c] = a1 / sums[1];
    att[out2 + c] = a2 / sums[2];
    att[out3 + c] = a3 / sums[3];
    att[out0 + c + 1] = b0 / sums[0];
    att[out1 + c + 1] = b1 / sums[1];
    att[out2 + c + 1] = b2 / sums[2];
    att[out3 + c + 1] = b3 / sums[3];
  }
  for (; c < hd; c++) {
    const vc = c * tokens;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let u = 0; u < tokens; u++) {
      const x = v[vc + u];
      s0 += scores[u] * x;
      s1 += scores[tokens + u] * x;
      s2 += scores[2 * tokens + u] * x;
      s3 += scores[3 * tokens + u] * x;
    }
    att[out0 + c] = s0 / sums[0];
    att[out1 + c] = s1 / sums[1];
    att[out2 + c] = s2 / sums[2];
    att[out3 + c] = s3 / sums[3];
  }
}

/** Scaled scores at `at` become softmax numerators; returns their sum. */
function softmax(scores, at, tokens, scale) {
  let max = -Infinity;
  for (let u = 0; u < tokens; u++) {
    const s = scores[at + u] * scale;
    scores[at + u] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let u = 0; u < tokens; u++) {
    const e = exp(scores[at + u] - max);
    scores[at + u] = e;
    sum += e;
  }
  return sum;
}

/** Multi-head attention of the first `rows` tokens over all `tokens`, from qkv into att. With
 *  `seen` (the last block, rows = 1), it also adds the CLS token's softmax weights over the tokens,
 *  averaged over the heads, into seen[0..tokens): read-only, so the action does not change. */
function attention(net, w, tokens, rows, seen = null) {
  const { d, heads } = net;
  const hd = d / heads;
  const scale = 1 / Math.sqrt(hd);
  const { qkv, att, scores, sums, k, v } = w;
  for (let head = 0; head < heads; head++) {
    const o = head * hd;
    // This head's keys as rows and values as columns: the inner loops then read memory in order.
    for (let u = 0; u < tokens; u++) {
      for (let c = 0; c < hd; c++) {
        k[u * hd + c] = qkv[u * 3 * d + d + o + c];
        v[c * tokens + u] = qkv[u * 3 * d + 2 * d + o + c];
      }
    }
    // Queries four at a time (past the last row, the last is repeated): each key and value
    // read serves four sums.
    for (let t = 0; t < rows; t += 4) {
      const t1 = Math.min(t + 1, rows - 1);
      const t2 = Math.min(t + 2, rows - 1);
      const t3 = Math.min(t + 3, rows - 1);
      scoreBlock(qkv, t * 3 * d + o, t1 * 3 * d + o, t2 * 3 * d + o, t3 * 3 * d + o, k, hd, tokens, scores);
      for (let i = 0; i < 4; i++) sums[i] = softmax(scores, i * tokens, tokens, scale);
      if (seen !== null && t === 0) {
        const k = 1 / (sums[0] * heads);
        for (let u = 0; u < tokens; u++) seen[u] += scores[u] * k;
      }
      weightedValues(scores, v, hd, tokens, sums, att, t * d + o, t1 * d + o, t2 * d + o, t3 * d + o);
    }
  }
}

/** The last block's QKV rows: every token's keys and values, but the query of the CLS token
 *  only (the only row it reads); each number is the same dot product as in `linear`. */
function lastQkv(l, h, tokens, d, w) {
  const { qkv, kv } = w;
  linear(l.qkv_weight.subarray(d * d), l.qkv_bias.subarray(d), h, tokens, d, kv);
  project(l.qkv_weight, l.qkv_bias.subarray(0, d), h, 0, d, qkv, 0);
  for (let t = 0; t < tokens; t++) qkv.set(kv.subarray(t * 2 * d, (t + 1) * 2 * d), t * 3 * d + d);
}

/** The action [ax, ay], each in (-1, 1), for an observation {context, predator, boids}. With
 *  `seen` (an array of at least obs.boids.length numbers), also what the network looks at: the
 *  last block's attention from the CLS token to each boid, averaged over the heads (the weights
 *  over all tokens sum to 1; CTX and the predator take the rest). The action is the same bits. */
export function forward(net, obs, seen = null) {
  const { d, f } = net;
  const tokens = 3 + obs.boids.length;
  const w = workspace(net, tokens);
  const { x, h, qkv, att, tmp, gate, up } = w;
  for (let i = 0; i < d; i++) x[i] = net.cls[i] + net.types.cls[i];
  // The browser file folds each projection's bias into its type embedding: W x + type.
  project(net.ctx, net.types.ctx, obs.context, 0, 2, x, d);
  project(net.pred, net.types.predator, obs.predator, 0, 4, x, 2 * d);
  for (let k = 0; k < obs.boids.length; k++) project(net.boid, net.types.boid, obs.boids[k], 0, 4, x, (3 + k) * d);
  for (let i = 0; i < net.layers.length; i++) {
    const l = net.layers[i];
    // After the last block only the CLS row is read: there, only its row is computed.
    const rows = i === net.layers.length - 1 ? 1 : tokens;
    for (let t = 0; t < tokens; t++) layerNorm(x, t * d, d, l.ln_scale, l.ln_bias, h);
    const last = i === net.layers.length - 1;
    if (last) lastQkv(l, h, tokens, d, w);
    else linear(l.qkv_weight, l.qkv_bias, h, tokens, d, qkv);
    if (last && seen !== null) w.seen.fill(0, 0, tokens);
    attention(net, w, tokens, rows, last && seen !== null ? w.seen : null);
    linear(l.attn_out_weight, l.attn_out_bias, att, rows, d, tmp);
    for (let k = 0; k < rows * d; k++) x[k] += tmp[k];
    for (let t = 0; t < rows; t++) layerNorm(x, t * d, d, l.ffn_ln_scale, l.ffn_ln_bias, h);
    linear(l.ffn_gate_weight, l.ffn_gate_bias, h, rows, d, gate);
    linear(l.ffn_up_weight, l.ffn_up_bias, h, rows, d, up);
    for (let k = 0; k < rows * f; k++) gate[k] = gelu(gate[k]) * up[k];
    linear(l.ffn_down_weight, l.ffn_down_bias, gate, rows, f, tmp);
    for (let k = 0; k < rows * d; k++) x[k] += tmp[k];
  }
  if (seen !== null) for (let k = 0; k < obs.boids.length; k++) seen[k] = w.seen[3 + k];
  const out = new Float64Array(2);
  project(net.out, net.outBias, x, 0, d, out, 0);
  return [tanh(out[0]), tanh(out[1])];
}

/** The predator's action from the network: full thrust (a unit vector) in the direction of its
 *  output, as every teacher acts and as `rust_gen`'s `net:` player does. Trained by squared
 *  error, the network shortens its output where the teacher's direction is uncertain; the
 *  direction keeps the average and the teacher's strength. An output shorter than 1e-9 stays.
 *  `seen`: as in `forward`. */
export function netAction(net, obs, seen = null) {
  const [x, y] = forward(net, obs, seen);
  const norm = Math.sqrt(x * x + y * y);
  return norm >= 1e-9 ? [x / norm, y / norm] : [x, y];
}
