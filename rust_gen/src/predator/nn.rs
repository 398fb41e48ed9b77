//! The predator transformer for inference (docs/predator.md, sections 7 and 8), read from the
//! browser file or from our own file. f32 arithmetic; every buffer is allocated once, so a call
//! allocates nothing (it grows only for a larger flock than any seen before).

use super::encode::Observation;
use serde_json::Value;
use std::path::Path;

pub const OUR_FORMAT: &str = "ludus.weights/1";
const LN_EPS: f32 = 1e-5;

struct Block {
    ln: (Vec<f32>, Vec<f32>),
    qkv_w: Vec<f32>, // all matrices transposed at load: [in][out]
    qkv_b: Vec<f32>,
    out_w: Vec<f32>, // [d][d]
    out_b: Vec<f32>,
    ffn_ln: (Vec<f32>, Vec<f32>),
    gate_w: Vec<f32>, // [f][d]
    gate_b: Vec<f32>,
    up_w: Vec<f32>, // [f][d]
    up_b: Vec<f32>,
    down_w: Vec<f32>, // [d][f]
    down_b: Vec<f32>,
}

pub struct Transformer {
    pub d_model: usize,
    pub n_heads: usize,
    pub ffn_hidden: usize,
    cls: Vec<f32>,              // cls_embedding + type.cls
    ctx: (Vec<f32>, Vec<f32>),  // W [d][2], bias + type.ctx
    pred: (Vec<f32>, Vec<f32>), // W [d][4], bias + type.predator
    boid: (Vec<f32>, Vec<f32>), // W [d][4], bias + type.boid
    blocks: Vec<Block>,
    output: (Vec<f32>, Vec<f32>), // W [2][d], b [2]
}

/// Buffers for one forward pass.
#[derive(Default)]
pub struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    att: Vec<f32>,
    scores: Vec<f32>,
    keys: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
}

/// Reads named fields of a weights file, naming the file and the field in every error.
struct Fields<'a> {
    source: &'a str,
}

impl Fields<'_> {
    fn get<'v>(&self, obj: &'v Value, path: &str) -> Result<&'v Value, String> {
        let mut at = obj;
        for part in path.split('.') {
            at = match part.parse::<usize>() {
                Ok(i) => at.get(i),
                Err(_) => at.get(part),
            }
            .ok_or_else(|| format!("{}: field '{path}' is missing", self.source))?;
        }
        Ok(at)
    }

    fn number(&self, obj: &Value, path: &str) -> Result<usize, String> {
        self.get(obj, path)?
            .as_u64()
            .filter(|&n| n > 0 && n <= 4096)
            .map(|n| n as usize)
            .ok_or_else(|| {
                format!(
                    "{}: field '{path}' must be a whole number in 1..=4096",
                    self.source
                )
            })
    }

    /// A vector of `n` finite numbers, or a matrix of `rows` x `cols` written as nested lists
    /// (the browser file) or flat with a "shape" (our file).
    fn floats(&self, obj: &Value, path: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let field = self.get(obj, path)?;
        let (data, got): (Vec<&Value>, Vec<usize>) = match field {
            Value::Object(map) => {
                let got: Vec<usize> = map
                    .get("shape")
                    .and_then(Value::as_array)
                    .map(|s| {
                        s.iter()
                            .filter_map(Value::as_u64)
                            .map(|n| n as usize)
                            .collect()
                    })
                    .unwrap_or_default();
                let data = map
                    .get("data")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                (data, got)
            }
            Value::Array(rows) if shape.len() == 2 => {
                let mut data = Vec::new();
                for row in rows {
                    let row = row.as_array().ok_or_else(|| {
                        format!(
                            "{}: field '{path}' must be a list of {} lists",
                            self.source, shape[0]
                        )
                    })?;
                    if row.len() != shape[1] {
                        return Err(format!(
                            "{}: field '{path}' has a row of {} numbers, expected {}",
                            self.source,
                            row.len(),
                            shape[1]
                        ));
                    }
                    data.extend(row.iter());
                }
                (data, vec![rows.len(), shape[1]])
            }
            Value::Array(items) => (items.iter().collect(), vec![items.len()]),
            _ => {
                return Err(format!(
                    "{}: field '{path}' must be a list of numbers",
                    self.source
                ))
            }
        };
        if got != shape {
            return Err(format!(
                "{}: field '{path}' has shape {got:?}, expected {shape:?}",
                self.source
            ));
        }
        data.iter()
            .enumerate()
            .map(|(i, v)| match v.as_f64() {
                Some(x) if x.is_finite() && (x as f32).is_finite() => Ok(x as f32),
                _ => Err(format!(
                    "{}: field '{path}' holds a non-finite or non-number value at index {i}",
                    self.source
                )),
            })
            .collect()
    }
}

fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

impl Transformer {
    pub fn load(path: &Path) -> Result<Transformer, String> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{source}: {e}"))?;
        // The old pages' file: `window.TRANSFORMER_PARAMS = {...};`
        let json = text
            .trim()
            .strip_prefix("window.TRANSFORMER_PARAMS =")
            .map(|t| t.trim().trim_end_matches(';'))
            .unwrap_or(&text);
        let obj: Value =
            serde_json::from_str(json).map_err(|e| format!("{source}: not JSON: {e}"))?;
        Transformer::from_value(&obj, &source)
    }

    /// Our file (`format` = ludus.weights/1, task predator) or the browser file.
    pub fn from_value(obj: &Value, source: &str) -> Result<Transformer, String> {
        let f = Fields { source };
        let ours = obj.get("format").is_some();
        if ours
            && (obj["format"] != OUR_FORMAT
                || obj.get("task").and_then(Value::as_str) != Some("predator"))
        {
            return Err(format!(
                "{source}: field 'format'/'task' must be {OUR_FORMAT:?} and \"predator\""
            ));
        }
        let arch = if ours {
            f.get(obj, "architecture")?
        } else {
            obj
        };
        let tensors = if ours { f.get(obj, "tensors")? } else { obj };
        let (d, heads, n_layers, ff) = (
            f.number(arch, "d_model")?,
            f.number(arch, "n_heads")?,
            f.number(arch, "n_layers")?,
            f.number(arch, "ffn_hidden")?,
        );
        if d % heads != 0 {
            return Err(format!(
                "{source}: field 'n_heads' ({heads}) must divide d_model ({d})"
            ));
        }
        let v = |name: &str, shape: &[usize]| f.floats(tensors, name, shape);
        let typed = |name: &str| v(&format!("type_embeddings.{name}"), &[d]);
        // Our file keeps the projection biases; the browser file has them folded into the types.
        let bias = |name: &str| -> Result<Vec<f32>, String> {
            if ours {
                v(&format!("{name}_bias"), &[d])
            } else {
                Ok(vec![0.0; d])
            }
        };
        let mut blocks = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let l = |name: &str, shape: &[usize]| v(&format!("layers.{i}.{name}"), shape);
            blocks.push(Block {
                ln: (l("ln_scale", &[d])?, l("ln_bias", &[d])?),
                qkv_w: transpose(l("qkv_weight", &[3 * d, d])?, 3 * d, d),
                qkv_b: l("qkv_bias", &[3 * d])?,
                out_w: transpose(l("attn_out_weight", &[d, d])?, d, d),
                out_b: l("attn_out_bias", &[d])?,
                ffn_ln: (l("ffn_ln_scale", &[d])?, l("ffn_ln_bias", &[d])?),
                gate_w: transpose(l("ffn_gate_weight", &[ff, d])?, ff, d),
                gate_b: l("ffn_gate_bias", &[ff])?,
                up_w: transpose(l("ffn_up_weight", &[ff, d])?, ff, d),
                up_b: l("ffn_up_bias", &[ff])?,
                down_w: transpose(l("ffn_down_weight", &[d, ff])?, d, ff),
                down_b: l("ffn_down_bias", &[d])?,
            });
        }
        if let Some(extra) = tensors
            .get("layers")
            .and_then(Value::as_array)
            .filter(|l| l.len() != n_layers)
        {
            return Err(format!(
                "{source}: field 'layers' holds {} layers, n_layers says {n_layers}",
                extra.len()
            ));
        }
        Ok(Transformer {
            d_model: d,
            n_heads: heads,
            ffn_hidden: ff,
            cls: add(&v("cls_embedding", &[d])?, &typed("cls")?),
            ctx: (
                transpose(v("ctx_projection", &[d, 2])?, d, 2),
                add(&bias("ctx_projection")?, &typed("ctx")?),
            ),
            pred: (
                transpose(v("predator_projection", &[d, 4])?, d, 4),
                add(&bias("predator_projection")?, &typed("predator")?),
            ),
            boid: (
                transpose(v("boid_projection", &[d, 4])?, d, 4),
                add(&bias("boid_projection")?, &typed("boid")?),
            ),
            blocks,
            output: (
                transpose(v("output_weight", &[2, d])?, 2, d),
                v("output_bias", &[2])?,
            ),
        })
    }

    /// The action (two numbers in (-1, 1)) for an observation.
    pub fn forward(&self, obs: &Observation, s: &mut Scratch) -> [f32; 2] {
        let (d, ff) = (self.d_model, self.ffn_hidden);
        let tokens = 3 + obs.boids.len();
        for (buf, len) in [
            (&mut s.x, tokens * d),
            (&mut s.h, tokens * d),
            (&mut s.qkv, tokens * 3 * d),
            (&mut s.att, tokens * d),
            (&mut s.scores, tokens),
            (&mut s.keys, tokens * d),
            (&mut s.gate, tokens * ff),
            (&mut s.up, tokens * ff),
        ] {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
        }
        s.x[..d].copy_from_slice(&self.cls);
        let f32s = |v: &[f64]| -> [f32; 4] {
            std::array::from_fn(|i| v.get(i).copied().unwrap_or(0.0) as f32)
        };
        linear(
            &self.ctx.0,
            &self.ctx.1,
            &f32s(&obs.context)[..2],
            &mut s.x[d..2 * d],
        );
        linear(
            &self.pred.0,
            &self.pred.1,
            &f32s(&obs.predator),
            &mut s.x[2 * d..3 * d],
        );
        for (k, b) in obs.boids.iter().enumerate() {
            let at = (3 + k) * d;
            linear(&self.boid.0, &self.boid.1, &f32s(b), &mut s.x[at..at + d]);
        }
        let last = self.blocks.len().saturating_sub(1);
        for (i, block) in self.blocks.iter().enumerate() {
            // After the last block only the CLS token is read: compute only its row there.
            let rows = if i == last { 1 } else { tokens };
            self.block(block, tokens, rows, s);
        }
        let mut out = [0.0f32; 2];
        linear(&self.output.0, &self.output.1, &s.x[..d], &mut out);
        out.map(f32::tanh)
    }

    fn block(&self, b: &Block, tokens: usize, rows: usize, s: &mut Scratch) {
        let (d, ff, heads) = (self.d_model, self.ffn_hidden, self.n_heads);
        let hd = d / heads;
        let scale = 1.0 / (hd as f32).sqrt();
        for t in 0..tokens {
            layer_norm(
                &s.x[t * d..(t + 1) * d],
                &b.ln,
                &mut s.h[t * d..(t + 1) * d],
            );
        }
        linear_rows(&b.qkv_w, &b.qkv_b, &s.h, &mut s.qkv, d, 3 * d, tokens);
        // Keys transposed ([d][tokens]): a row of scores is then a loop over tokens.
        for u in 0..tokens {
            for c in 0..d {
                s.keys[c * tokens + u] = s.qkv[u * 3 * d + d + c];
            }
        }
        for t in 0..rows {
            for head in 0..heads {
                let q = &s.qkv[t * 3 * d + head * hd..t * 3 * d + (head + 1) * hd];
                let scores = &mut s.scores[..tokens];
                scores.fill(0.0);
                for (c, qc) in q.iter().enumerate() {
                    let k = &s.keys[(head * hd + c) * tokens..(head * hd + c + 1) * tokens];
                    for (score, kc) in scores.iter_mut().zip(k) {
                        *score += qc * kc;
                    }
                }
                let mut max = f32::NEG_INFINITY;
                for score in scores.iter_mut() {
                    *score *= scale;
                    if *score > max {
                        max = *score; // not f32::max: its NaN handling costs more than the rest
                    }
                }
                let mut total = 0.0;
                for score in &mut s.scores[..tokens] {
                    *score = (*score - max).exp();
                    total += *score;
                }
                let inv_total = 1.0 / total;
                let out = &mut s.att[t * d + head * hd..t * d + (head + 1) * hd];
                out.fill(0.0);
                for u in 0..tokens {
                    let w = s.scores[u] * inv_total;
                    let v =
                        &s.qkv[u * 3 * d + 2 * d + head * hd..u * 3 * d + 2 * d + (head + 1) * hd];
                    for (o, x) in out.iter_mut().zip(v) {
                        *o += w * x;
                    }
                }
            }
        }
        linear_rows(&b.out_w, &b.out_b, &s.att, &mut s.h, d, d, rows);
        for (x, y) in s.x[..rows * d].iter_mut().zip(&s.h[..rows * d]) {
            *x += y;
        }
        for t in 0..rows {
            layer_norm(
                &s.x[t * d..(t + 1) * d],
                &b.ffn_ln,
                &mut s.h[t * d..(t + 1) * d],
            );
        }
        linear_rows(&b.gate_w, &b.gate_b, &s.h, &mut s.gate, d, ff, rows);
        linear_rows(&b.up_w, &b.up_b, &s.h, &mut s.up, d, ff, rows);
        for (g, u) in s.gate[..rows * ff].iter_mut().zip(&s.up[..rows * ff]) {
            *g = gelu(*g) * u;
        }
        linear_rows(&b.down_w, &b.down_b, &s.gate, &mut s.att, ff, d, rows);
        for (x, y) in s.x[..rows * d].iter_mut().zip(&s.att[..rows * d]) {
            *x += y;
        }
    }
}

/// y = W x + b, with W stored transposed ([in][out], see `transpose`): the inner loop runs
/// along the outputs, independent lanes the compiler vectorizes.
fn linear(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    let n = y.len();
    y.fill(0.0);
    for (i, xi) in x.iter().enumerate() {
        for (out, w) in y.iter_mut().zip(&wt[i * n..(i + 1) * n]) {
            *out += xi * w;
        }
    }
    for (out, bias) in y.iter_mut().zip(b) {
        *out += bias;
    }
}

/// `linear` for `rows` rows at once (x: rows x inputs, y: rows x outputs). Tiles of 4 rows by 8
/// outputs are accumulated in registers, so each weight loaded serves 4 rows; the same sums in
/// the same order as `linear`, whatever the tiling.
fn linear_rows(
    wt: &[f32],
    b: &[f32],
    x: &[f32],
    y: &mut [f32],
    inputs: usize,
    outputs: usize,
    rows: usize,
) {
    const R: usize = 4;
    const C: usize = 8;
    let mut r0 = 0;
    while r0 + R <= rows {
        let mut j0 = 0;
        while j0 + C <= outputs {
            let mut acc = [[0f32; C]; R];
            for i in 0..inputs {
                let w = &wt[i * outputs + j0..i * outputs + j0 + C];
                for (r, row) in acc.iter_mut().enumerate() {
                    let a = x[(r0 + r) * inputs + i];
                    for (o, wc) in row.iter_mut().zip(w) {
                        *o += a * wc;
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                for (c, v) in row.iter().enumerate() {
                    y[(r0 + r) * outputs + j0 + c] = v + b[j0 + c];
                }
            }
            j0 += C;
        }
        for r in r0..r0 + R {
            for j in j0..outputs {
                let mut v = 0.0;
                for i in 0..inputs {
                    v += x[r * inputs + i] * wt[i * outputs + j];
                }
                y[r * outputs + j] = v + b[j];
            }
        }
        r0 += R;
    }
    for r in r0..rows {
        linear(
            wt,
            b,
            &x[r * inputs..(r + 1) * inputs],
            &mut y[r * outputs..(r + 1) * outputs],
        );
    }
}

/// [rows][cols] row-major to [cols][rows].
fn transpose(m: Vec<f32>, rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

fn layer_norm(x: &[f32], (scale, bias): &(Vec<f32>, Vec<f32>), y: &mut [f32]) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + LN_EPS).sqrt();
    for (((o, v), g), b) in y.iter_mut().zip(x).zip(scale).zip(bias) {
        *o = (v - mean) * inv * g + b;
    }
}

/// GELU with the exact error function (f32 erf, within an ulp or two).
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// A browser file with random weights (scaled like PyTorch's initialisation), for benchmarks.
pub fn random_browser_file(
    rng: &mut crate::core::Rng,
    d: usize,
    heads: usize,
    layers: usize,
    ffn: usize,
) -> Value {
    let mut v = |n: usize, scale: f64| -> Vec<f64> {
        (0..n)
            .map(|_| (rng.next_f64() * 2.0 - 1.0) * scale)
            .collect()
    };
    let mut m = |rows: usize, cols: usize| -> Vec<Vec<f64>> {
        (0..rows)
            .map(|_| v(cols, 1.0 / (cols as f64).sqrt()))
            .collect()
    };
    let blocks: Vec<Value> = (0..layers)
        .map(|_| {
            serde_json::json!({
                "ln_scale": vec![1.0; d], "ln_bias": vec![0.0; d], "qkv_weight": m(3 * d, d), "qkv_bias": vec![0.0; 3 * d],
                "attn_out_weight": m(d, d), "attn_out_bias": vec![0.0; d], "ffn_ln_scale": vec![1.0; d], "ffn_ln_bias": vec![0.0; d],
                "ffn_gate_weight": m(ffn, d), "ffn_gate_bias": vec![0.0; ffn], "ffn_up_weight": m(ffn, d), "ffn_up_bias": vec![0.0; ffn],
                "ffn_down_weight": m(d, ffn), "ffn_down_bias": vec![0.0; d],
            })
        })
        .collect();
    serde_json::json!({
        "d_model": d, "n_heads": heads, "n_layers": layers, "ffn_hidden": ffn,
        "cls_embedding": m(1, d)[0], "type_embeddings": {"cls": m(1, d)[0], "ctx": m(1, d)[0], "predator": m(1, d)[0], "boid": m(1, d)[0]},
        "ctx_projection": m(d, 2), "predator_projection": m(d, 4), "boid_projection": m(d, 4),
        "layers": blocks, "output_weight": m(2, d), "output_bias": vec![0.0; 2],
    })
}
