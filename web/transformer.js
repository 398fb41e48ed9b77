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

/** y = W x + b for W [rows][cols] row-major, x a slice of `xs` at `at`. */
function linear(w, b, xs, at, cols, out, outAt) {
  const rows = b.length;
  for (let r = 0; r < rows; r++) {
    let s = b[r];
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += w[base + c] * xs[at + c];
    out[outAt + r] = s;
  }
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
const EXP_TERMS = Array.from({ length: 13 }, (_, n) => n).map((n) => {
  let f = 1;
  for (let k = 2; k <= n; k++) f *= k;
  return 1 / f;
});
const bits = new DataView(new ArrayBuffer(8));

/** 2^k for an integer k in [-1022, 1023], built from its bits. */
function pow2(k) {
  bits.setUint32(0, (k + 1023) << 20);
  bits.setUint32(4, 0);
  return bits.getFloat64(0);
}

/** e^x to about 1e-15 relative: x = k ln 2 + r with |r| <= ln 2 / 2, then a Taylor series. */
export function exp(x) {
  if (x > 709) return Infinity;
  if (x < -708) return 0;
  const k = Math.round(x / Math.LN2);
  const r = x - k * LN2_HI - k * LN2_LO;
  let p = EXP_TERMS[12];
  for (let n = 11; n >= 0; n--) p = p * r + EXP_TERMS[n];
  return p * pow2(k);
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

/** The action [ax, ay], each in (-1, 1), for an observation {context, predator, boids}. */
export function forward(net, obs) {
  const { d, heads, f } = net;
  const hd = d / heads;
  const scale = 1 / Math.sqrt(hd);
  const tokens = 3 + obs.boids.length;
  const x = new Float64Array(tokens * d);
  for (let i = 0; i < d; i++) x[i] = net.cls[i] + net.types.cls[i];
  // The browser file folds each projection's bias into its type embedding: W x + type.
  linear(net.ctx, net.types.ctx, obs.context, 0, 2, x, d);
  linear(net.pred, net.types.predator, obs.predator, 0, 4, x, 2 * d);
  obs.boids.forEach((b, k) => linear(net.boid, net.types.boid, b, 0, 4, x, (3 + k) * d));
  const h = new Float64Array(tokens * d);
  const qkv = new Float64Array(tokens * 3 * d);
  const att = new Float64Array(tokens * d);
  const scores = new Float64Array(tokens);
  const gate = new Float64Array(f);
  const up = new Float64Array(f);
  const mid = new Float64Array(f);
  const tmp = new Float64Array(d);
  net.layers.forEach((l, i) => {
    // After the last block only the CLS row is read: there, only its row is computed.
    const rows = i === net.layers.length - 1 ? 1 : tokens;
    for (let t = 0; t < tokens; t++) layerNorm(x, t * d, d, l.ln_scale, l.ln_bias, h);
    for (let t = 0; t < tokens; t++) linear(l.qkv_weight, l.qkv_bias, h, t * d, d, qkv, t * 3 * d);
    for (let head = 0; head < heads; head++) {
      const o = head * hd;
      for (let t = 0; t < rows; t++) {
        let max = -Infinity;
        for (let u = 0; u < tokens; u++) {
          let s = 0;
          for (let c = 0; c < hd; c++) s += qkv[t * 3 * d + o + c] * qkv[u * 3 * d + d + o + c];
          scores[u] = s * scale;
          if (scores[u] > max) max = scores[u];
        }
        let sum = 0;
        for (let u = 0; u < tokens; u++) {
          scores[u] = exp(scores[u] - max);
          sum += scores[u];
        }
        for (let c = 0; c < hd; c++) {
          let s = 0;
          for (let u = 0; u < tokens; u++) s += scores[u] * qkv[u * 3 * d + 2 * d + o + c];
          att[t * d + o + c] = s / sum;
        }
      }
    }
    for (let t = 0; t < rows; t++) {
      linear(l.attn_out_weight, l.attn_out_bias, att, t * d, d, tmp, 0);
      for (let k = 0; k < d; k++) x[t * d + k] += tmp[k];
    }
    for (let t = 0; t < rows; t++) layerNorm(x, t * d, d, l.ffn_ln_scale, l.ffn_ln_bias, h);
    for (let t = 0; t < rows; t++) {
      linear(l.ffn_gate_weight, l.ffn_gate_bias, h, t * d, d, gate, 0);
      linear(l.ffn_up_weight, l.ffn_up_bias, h, t * d, d, up, 0);
      for (let k = 0; k < f; k++) mid[k] = gelu(gate[k]) * up[k];
      linear(l.ffn_down_weight, l.ffn_down_bias, mid, 0, f, tmp, 0);
      for (let k = 0; k < d; k++) x[t * d + k] += tmp[k];
    }
  });
  const out = new Float64Array(2);
  linear(net.out, net.outBias, x, 0, d, out, 0);
  return [tanh(out[0]), tanh(out[1])];
}
