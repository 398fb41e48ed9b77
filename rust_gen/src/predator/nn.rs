//! The predator transformer for inference (docs/predator.md, sections 7 and 8), read from the
//! browser file or from our own file. f32 arithmetic; every buffer is allocated once, so a call
//! allocates nothing (it grows only for a larger flock than any seen before).

use super::encode::Observation;
use serde_json::Value;
use std::path::Path;

pub const OUR_FORMAT: &str = "ludus.weights/1";
const LN_EPS: f32 = 1e-5;
/// Sums run in this many lanes, combined in a fixed order: the loops vectorise, and every
/// processor adds in the same order.
const LANES: usize = 8;

struct Block {
    ln: (Vec<f32>, Vec<f32>),
    // Matrices are stored transposed at load, [in][out], but for the queries' and the keys'
    // (see `block`). The queries' weights [out][in] with their bias as a last column, all times
    // 1/sqrt(head size): the queries come out transposed.
    q_wb: Vec<f32>,
    k_w: Vec<f32>, // [out][in], as in the file; no bias (see `block`)
    v_w: Vec<f32>,
    v_b: Vec<f32>,
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
    /// The widest build of `forward` this processor runs, found once at load.
    build: Build,
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
    h_t: Vec<f32>,        // h transposed, [d + 1][padded], the last row ones
    queries: Vec<f32>,    // transposed, [d][rows, padded to 8]
    keys: Vec<f32>,       // transposed, [d][padded]
    values: Vec<f32>,     // [tokens][d]
    att: Vec<f32>,        // [tokens][d]
    scores: Vec<f32>,     // a head's, transposed: [tokens][rows, padded to 8]
    inv_totals: Vec<f32>, // 1 / each column of exponentials' total
    // The last block's (see `last_block`):
    h_cls: Vec<f32>,  // [d + 1], h of the CLS token and a one
    q_cls: Vec<f32>,  // [d], its query
    back: Vec<f32>,   // [d][heads, padded to 8], W_k^T q for each head
    pooled: Vec<f32>, // [heads][d], sum_t p_t h_t for each head
    zeros: Vec<f32>,  // a zero bias for the attention products
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
        let scale = 1.0 / ((d / heads) as f32).sqrt();
        let mut blocks = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let l = |name: &str, shape: &[usize]| v(&format!("layers.{i}.{name}"), shape);
            let (qkv_w, qkv_b) = (l("qkv_weight", &[3 * d, d])?, l("qkv_bias", &[3 * d])?);
            blocks.push(Block {
                ln: (l("ln_scale", &[d])?, l("ln_bias", &[d])?),
                q_wb: qkv_w[..d * d]
                    .chunks_exact(d)
                    .zip(&qkv_b[..d])
                    .flat_map(|(row, b)| row.iter().chain([b]).map(|w| w * scale))
                    .collect(),
                k_w: qkv_w[d * d..2 * d * d].to_vec(),
                v_w: transpose(qkv_w[2 * d * d..].to_vec(), d, d),
                v_b: qkv_b[2 * d..].to_vec(),
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
            build: Build::detect(),
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
        // SAFETY: `build` is what `Build::detect` found on this processor.
        unsafe { self.forward_in(self.build, obs, s) }
    }

    /// `forward` in a given build (for benchmarks); it panics where the processor lacks it.
    pub fn forward_with(&self, build: Build, obs: &Observation, s: &mut Scratch) -> [f32; 2] {
        assert!(
            build.runs_here(),
            "the {} build needs features this processor lacks",
            build.name()
        );
        // SAFETY: asserted above.
        unsafe { self.forward_in(build, obs, s) }
    }

    /// # Safety
    /// The processor must have the features of `build` (`build.runs_here()`).
    unsafe fn forward_in(&self, build: Build, obs: &Observation, s: &mut Scratch) -> [f32; 2] {
        match build {
            // SAFETY: the caller's promise: the processor has the features.
            #[cfg(target_arch = "x86_64")]
            Build::Avx512 => unsafe { self.forward_avx512(obs, s) },
            #[cfg(target_arch = "x86_64")]
            Build::Avx2Fma => unsafe { self.forward_avx2(obs, s) },
            Build::Baseline => self.forward_body::<Baseline>(obs, s),
        }
    }

    /// `forward` compiled for 8-wide vectors and fused multiply-adds. The arithmetic is the same
    /// as the baseline build's: every sum runs in a fixed order and every multiply-add is fused
    /// (the baseline's `mul_add` is the C library's exactly rounded `fmaf`), so every processor
    /// gives the same bits (tested) and student episodes do not depend on the machine.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn forward_avx2(&self, obs: &Observation, s: &mut Scratch) -> [f32; 2] {
        self.forward_body::<Avx2Fma>(obs, s)
    }

    /// `forward` for 16-wide vectors, where the processor has them: the same code, so the same
    /// bits (tested), but each 16-output tile of a product is one vector instead of two, and
    /// the compiler has 32 vector registers instead of 16 (about a fifth faster at 50 boids).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn forward_avx512(&self, obs: &Observation, s: &mut Scratch) -> [f32; 2] {
        self.forward_body::<Avx512>(obs, s)
    }

    #[inline(always)]
    fn forward_body<K: Kernels>(&self, obs: &Observation, s: &mut Scratch) -> [f32; 2] {
        let (d, ff) = (self.d_model, self.ffn_hidden);
        let tokens = 3 + obs.boids.len();
        let padded = tokens.next_multiple_of(LANES);
        // The widest rows of scores: a query per token, or (the last block) a head per column.
        let wide = padded.max(self.n_heads.next_multiple_of(LANES));
        for (buf, len) in [
            (&mut s.x, tokens * d),
            (&mut s.h, padded * d),
            (&mut s.h_t, padded * (d + 1)),
            (&mut s.queries, padded * d),
            (&mut s.keys, padded * d),
            (&mut s.values, tokens * d),
            (&mut s.att, tokens * d),
            (&mut s.scores, tokens * wide),
            (&mut s.inv_totals, wide),
            (&mut s.h_cls, d + 1),
            (&mut s.q_cls, d),
            (&mut s.back, d * self.n_heads.next_multiple_of(LANES)),
            (&mut s.pooled, self.n_heads * d),
            (&mut s.zeros, padded + d),
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
        if let Some((last, blocks)) = self.blocks.split_last() {
            for block in blocks {
                self.block::<K>(block, tokens, s);
            }
            self.last_block::<K>(last, tokens, s);
        }
        let mut out = [0.0f32; 2];
        linear(&self.output.0, &self.output.1, &s.x[..d], &mut out);
        out.map(f32::tanh)
    }

    /// One head's attention of the first `rows` tokens over all `tokens`: softmax(Q K^T) V into
    /// the head's columns of `s.att`, computed transposed, as S^T = K Q^T. The softmax then runs
    /// down the columns of S^T, eight queries at a time in the lanes of a vector, with no sums
    /// across a vector. Its division by the total waits until after the product with the
    /// values, where a query has 12 numbers instead of one per token. Each product reads and
    /// writes in place.
    #[inline(always)]
    fn attention_head<K: Kernels>(&self, head: usize, tokens: usize, s: &mut Scratch) {
        let d = self.d_model;
        let hd = d / self.n_heads;
        let (rows, padded) = (tokens, tokens.next_multiple_of(LANES));
        let queries = padded; // the columns of S^T
        let at = head * hd;
        let scores = &mut s.scores[..tokens * queries];
        let shape = Shape::new(hd, queries, tokens).x_transposed(padded);
        K::linear_rows(
            &s.queries[at * queries..],
            &s.zeros,
            &s.keys[at * padded..],
            scores,
            shape,
        );
        K::softmax_columns(scores, queries, &mut s.inv_totals);
        let shape = Shape::new(tokens, hd, rows)
            .strides(1, d, d)
            .x_transposed(queries);
        K::linear_rows(&s.values[at..], &s.zeros, scores, &mut s.att[at..], shape);
        for (row, inv) in s.att.chunks_exact_mut(d).zip(&s.inv_totals[..rows]) {
            for v in &mut row[at..at + hd] {
                *v *= inv;
            }
        }
    }

    /// A pre-norm block (but the last, see `last_block`).
    #[inline(always)]
    fn block<K: Kernels>(&self, b: &Block, tokens: usize, s: &mut Scratch) {
        let (d, heads) = (self.d_model, self.n_heads);
        let padded = tokens.next_multiple_of(LANES);
        for t in 0..tokens {
            layer_norm(
                &s.x[t * d..(t + 1) * d],
                &b.ln,
                &mut s.h[t * d..(t + 1) * d],
            );
        }
        K::linear_rows(
            &b.v_w,
            &b.v_b,
            &s.h,
            &mut s.values,
            Shape::new(d, d, tokens),
        );
        // h^T, padded by zero columns, with a row of ones: the queries and keys come out
        // transposed from it, Q^T = [W_q b_q] [h^T; 1] and K^T = W_k h^T, as the score product
        // reads them. The keys' bias is left out: it adds q . b_k to every score of a query,
        // which the softmax cancels.
        s.h[tokens * d..padded * d].fill(0.0);
        for (t0, rows8) in s.h[..padded * d].chunks_exact(LANES * d).enumerate() {
            for (c, column) in s.h_t[..d * padded].chunks_exact_mut(padded).enumerate() {
                let block: [f32; LANES] = std::array::from_fn(|k| rows8[k * d + c]);
                column[t0 * LANES..(t0 + 1) * LANES].copy_from_slice(&block);
            }
        }
        s.h_t[d * padded..(d + 1) * padded].fill(1.0);
        K::linear_rows(
            &s.h_t,
            &s.zeros,
            &b.q_wb,
            &mut s.queries,
            Shape::new(d + 1, padded, d).strides(d + 1, padded, padded),
        );
        K::linear_rows(
            &s.h_t,
            &s.zeros,
            &b.k_w,
            &mut s.keys,
            Shape::new(d, padded, d),
        );
        for head in 0..heads {
            self.attention_head::<K>(head, tokens, s);
        }
        self.finish_block::<K>(b, tokens, s);
    }

    /// The last block, for the CLS token only, the only one read after it. Its attention needs
    /// neither the keys nor the values of the tokens: for the CLS query q of a head, and p the
    /// softmax of its scores over the tokens' normed inputs h_t, q . (W_k h_t) = (W_k^T q) . h_t,
    /// and sum_t p_t (W_v h_t + b_v) = W_v (sum_t p_t h_t) + b_v, as the p_t sum to 1. So each
    /// query goes back through W_k and the weights apply to h: about a tenth of the products
    /// of the other blocks (the same sums, in another order).
    #[inline(always)]
    fn last_block<K: Kernels>(&self, b: &Block, tokens: usize, s: &mut Scratch) {
        let (d, heads) = (self.d_model, self.n_heads);
        let (hd, width) = (d / heads, heads.next_multiple_of(LANES));
        for t in 0..tokens {
            layer_norm(
                &s.x[t * d..(t + 1) * d],
                &b.ln,
                &mut s.h[t * d..(t + 1) * d],
            );
        }
        s.h_cls[..d].copy_from_slice(&s.h[..d]);
        s.h_cls[d] = 1.0;
        // q = [W_q b_q] [h_0; 1]; then W_k^T q per head, head by head into the columns of
        // `back` ([d][width], the padding columns zero).
        let shape = Shape::new(d + 1, 1, d);
        K::linear_rows(&s.h_cls, &s.zeros, &b.q_wb, &mut s.q_cls, shape);
        s.back[..d * width].fill(0.0);
        for head in 0..heads {
            let at = head * hd;
            let shape = Shape::new(hd, 1, d).strides(1, 1, width).x_transposed(d);
            K::linear_rows(
                &s.q_cls[at..],
                &s.zeros,
                &b.k_w[at * d..],
                &mut s.back[head..],
                shape,
            );
        }
        // The scores, [tokens][width], a head a column; their softmax down the columns; then
        // sum_t p_t h_t, a head a row of `pooled`.
        let scores = &mut s.scores[..tokens * width];
        K::linear_rows(
            &s.back,
            &s.zeros,
            &s.h,
            scores,
            Shape::new(d, width, tokens),
        );
        K::softmax_columns(scores, width, &mut s.inv_totals);
        let shape = Shape::new(tokens, d, heads)
            .strides(1, d, d)
            .x_transposed(width);
        K::linear_rows(&s.h, &s.zeros, scores, &mut s.pooled, shape);
        for (row, inv) in s.pooled.chunks_exact_mut(d).zip(&s.inv_totals[..heads]) {
            for v in row {
                *v *= inv;
            }
        }
        for head in 0..heads {
            let at = head * hd;
            let shape = Shape::new(d, hd, 1).strides(d, d, d);
            let (w, bias) = (&b.v_w[at..], &b.v_b[at..]);
            K::linear_rows(w, bias, &s.pooled[head * d..], &mut s.att[at..], shape);
        }
        self.finish_block::<K>(b, 1, s);
    }

    /// The rest of a block for its first `rows` tokens, from the heads' outputs in `s.att`:
    /// the attention's output projection, the residual, the feed-forward part, the residual.
    #[inline(always)]
    fn finish_block<K: Kernels>(&self, b: &Block, rows: usize, s: &mut Scratch) {
        let (d, ff) = (self.d_model, self.ffn_hidden);
        K::linear_rows(&b.out_w, &b.out_b, &s.att, &mut s.h, Shape::new(d, d, rows));
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
        K::linear_rows(
            &b.gate_w,
            &b.gate_b,
            &s.h,
            &mut s.gate,
            Shape::new(d, ff, rows),
        );
        K::linear_rows(&b.up_w, &b.up_b, &s.h, &mut s.up, Shape::new(d, ff, rows));
        K::geglu(&mut s.gate[..rows * ff], &s.up[..rows * ff]);
        K::linear_rows(
            &b.down_w,
            &b.down_b,
            &s.gate,
            &mut s.att,
            Shape::new(ff, d, rows),
        );
        for (x, y) in s.x[..rows * d].iter_mut().zip(&s.att[..rows * d]) {
            *x += y;
        }
    }
}

/// The shape of a product y = x W + b: x is rows x inputs, W inputs x outputs (stored [in][out]),
/// y rows x outputs; each matrix's rows lie `ld*` numbers apart in its slice (its leading
/// dimension), so a product can read and write columns of a larger matrix in place. A row of
/// x may also be a column (`x_step`: the distance between its numbers), so a product can read
/// x transposed.
#[derive(Clone, Copy)]
struct Shape {
    inputs: usize,
    outputs: usize,
    rows: usize,
    ldx: usize,
    x_step: usize,
    ldw: usize,
    ldy: usize,
}

impl Shape {
    /// Dense matrices: rows are as long as they are.
    fn new(inputs: usize, outputs: usize, rows: usize) -> Shape {
        Shape {
            inputs,
            outputs,
            rows,
            ldx: inputs,
            x_step: 1,
            ldw: outputs,
            ldy: outputs,
        }
    }

    fn strides(self, ldx: usize, ldw: usize, ldy: usize) -> Shape {
        Shape {
            ldx,
            ldw,
            ldy,
            ..self
        }
    }

    /// x read transposed: its rows are columns of a matrix whose rows lie `ld` apart.
    fn x_transposed(self, ld: usize) -> Shape {
        Shape {
            ldx: 1,
            x_step: ld,
            ..self
        }
    }
}

/// The builds of `forward`, the widest first; `detect` picks the widest this processor runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    Baseline,
}

impl Build {
    pub const ALL: &[Build] = &[
        #[cfg(target_arch = "x86_64")]
        Build::Avx512,
        #[cfg(target_arch = "x86_64")]
        Build::Avx2Fma,
        Build::Baseline,
    ];

    /// The widest build this processor runs.
    pub fn detect() -> Build {
        Build::ALL
            .iter()
            .copied()
            .find(|b| b.runs_here())
            .unwrap_or(Build::Baseline)
    }

    pub fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        use std::arch::is_x86_feature_detected as has;
        match self {
            #[cfg(target_arch = "x86_64")]
            Build::Avx512 => has!("avx512f") && has!("avx2") && has!("fma"),
            #[cfg(target_arch = "x86_64")]
            Build::Avx2Fma => has!("avx2") && has!("fma"),
            Build::Baseline => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Build::Avx512 => "AVX-512F+FMA",
            #[cfg(target_arch = "x86_64")]
            Build::Avx2Fma => "AVX2+FMA",
            Build::Baseline => "baseline",
        }
    }
}

/// The three kernels that take most of a call, in three builds: `Avx512` and `Avx2Fma` run
/// them compiled for 16- and 8-wide vectors and fused multiply-adds (each its own function:
/// inlined into one large function, the compiler stops vectorising the tiles), `Baseline` for
/// any processor.
trait Kernels {
    fn linear_rows(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], shape: Shape);
    fn softmax_columns(scores: &mut [f32], width: usize, inv_totals: &mut [f32]);
    fn geglu(gate: &mut [f32], up: &[f32]);
}

struct Baseline;

impl Kernels for Baseline {
    fn linear_rows(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], shape: Shape) {
        linear_rows(wt, b, x, y, shape);
    }
    fn softmax_columns(scores: &mut [f32], width: usize, inv_totals: &mut [f32]) {
        softmax_columns(scores, width, inv_totals);
    }
    fn geglu(gate: &mut [f32], up: &[f32]) {
        geglu(gate, up);
    }
}

/// A build of the kernels compiled for the given target features: the same code as
/// `Baseline`'s, in functions of their own (see `Kernels`).
macro_rules! wide_kernels {
    ($(#[$doc:meta])* $name:ident, $features:literal) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        struct $name;

        #[cfg(target_arch = "x86_64")]
        impl Kernels for $name {
            fn linear_rows(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], shape: Shape) {
                #[target_feature(enable = $features)]
                fn wide(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], shape: Shape) {
                    linear_rows(wt, b, x, y, shape);
                }
                // SAFETY: see the type: the processor has the features.
                unsafe { wide(wt, b, x, y, shape) }
            }
            fn softmax_columns(scores: &mut [f32], width: usize, inv_totals: &mut [f32]) {
                #[target_feature(enable = $features)]
                fn wide(scores: &mut [f32], width: usize, inv_totals: &mut [f32]) {
                    softmax_columns(scores, width, inv_totals);
                }
                // SAFETY: as above.
                unsafe { wide(scores, width, inv_totals) }
            }
            fn geglu(gate: &mut [f32], up: &[f32]) {
                #[target_feature(enable = $features)]
                fn wide(gate: &mut [f32], up: &[f32]) {
                    geglu(gate, up);
                }
                // SAFETY: as above.
                unsafe { wide(gate, up) }
            }
        }
    };
}

wide_kernels!(
    /// Only `forward_avx2` uses it, which runs only where the processor has AVX2 and FMA.
    Avx2Fma,
    "avx2,fma"
);

wide_kernels!(
    /// Only `forward_avx512` uses it, which runs only where the processor has AVX-512F, AVX2
    /// and FMA.
    Avx512,
    "avx512f,avx2,fma"
);

/// y = W x + b, with W stored transposed ([in][out], see `transpose`): the inner loop runs
/// along the outputs, independent lanes the compiler vectorizes.
#[inline(always)]
fn linear(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    let n = y.len();
    y.fill(0.0);
    for (i, xi) in x.iter().enumerate() {
        for (out, w) in y.iter_mut().zip(&wt[i * n..(i + 1) * n]) {
            *out = xi.mul_add(*w, *out);
        }
    }
    for (out, bias) in y.iter_mut().zip(b) {
        *out += bias;
    }
}

/// `linear` for `rows` rows at once (x: rows x inputs, y: rows x outputs), in tiles of up to 4
/// rows (8 for narrow products) by 16 outputs accumulated in registers: each weight loaded
/// serves 4 rows, each input 16 outputs. Every output is the same sum in the same order as in `linear`, whatever the tiling
/// and whatever the vector width, each step a fused multiply-add, so the result is the same on
/// every processor.
#[inline(always)]
fn linear_rows(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], shape: Shape) {
    let m = Matmul { wt, b, x, shape };
    let (rows, mut r0) = (shape.rows, 0);
    // Fewer than 16 outputs (a head's values): tiles of 8 rows, to keep 8 sums in flight.
    while shape.outputs < 16 && r0 + 8 <= rows {
        m.row_tiles::<8>(y, r0);
        r0 += 8;
    }
    while r0 + 4 <= rows {
        m.row_tiles::<4>(y, r0);
        r0 += 4;
    }
    while r0 < rows {
        m.row_tiles::<1>(y, r0);
        r0 += 1;
    }
}

struct Matmul<'a> {
    wt: &'a [f32],
    b: &'a [f32],
    x: &'a [f32],
    shape: Shape,
}

impl Matmul<'_> {
    /// Rows r0..r0+R, all outputs: tiles of 16, then 8, then 4, then one at a time.
    #[inline(always)]
    fn row_tiles<const R: usize>(&self, y: &mut [f32], r0: usize) {
        let mut j0 = 0;
        while j0 + 16 <= self.shape.outputs {
            self.tile::<R, 16>(y, r0, j0);
            j0 += 16;
        }
        if j0 + 8 <= self.shape.outputs {
            self.tile::<R, 8>(y, r0, j0);
            j0 += 8;
        }
        if j0 + 4 <= self.shape.outputs {
            self.tile::<R, 4>(y, r0, j0);
            j0 += 4;
        }
        while j0 < self.shape.outputs {
            self.tile::<R, 1>(y, r0, j0);
            j0 += 1;
        }
    }

    /// y[r0..r0+R][j0..j0+C] = x W + b, summed over the inputs in order, then the bias.
    #[inline(always)]
    fn tile<const R: usize, const C: usize>(&self, y: &mut [f32], r0: usize, j0: usize) {
        let Shape {
            inputs,
            ldx,
            x_step,
            ldw,
            ldy,
            ..
        } = self.shape;
        let mut acc = [[0f32; C]; R];
        // Checked once here, so that the loop below runs without a bounds check per input.
        assert!(
            inputs == 0
                || ((r0 + R - 1) * ldx + (inputs - 1) * x_step < self.x.len()
                    && (inputs - 1) * ldw + j0 + C <= self.wt.len())
        );
        for i in 0..inputs {
            // SAFETY: i * ldw + j0 + C <= (inputs - 1) * ldw + j0 + C <= wt.len() (asserted).
            let w: &[f32; C] = unsafe { &*self.wt.as_ptr().add(i * ldw + j0).cast::<[f32; C]>() };
            let mut a = [0f32; R];
            for (r, ar) in a.iter_mut().enumerate() {
                // SAFETY: (r0 + r) * ldx + i * x_step is at most the index asserted above.
                *ar = unsafe { *self.x.as_ptr().add((r0 + r) * ldx + i * x_step) };
            }
            for r in 0..R {
                for c in 0..C {
                    acc[r][c] = a[r].mul_add(w[c], acc[r][c]);
                }
            }
        }
        let bias = &self.b[j0..j0 + C];
        for (r, row) in acc.iter().enumerate() {
            let out = &mut y[(r0 + r) * ldy + j0..][..C];
            for ((o, v), bc) in out.iter_mut().zip(row).zip(bias) {
                *o = v + bc;
            }
        }
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

/// A softmax down each column of `scores` (rows of `width` numbers, a multiple of 8) but for
/// its last step: in place, e^(v - the column's max), and 1 / each column's total into
/// `inv_totals`. Eight columns at a time run in the lanes of a vector; each column's maximum
/// and total go down its rows in order, so the result is the same on every processor.
#[inline(always)]
fn softmax_columns(scores: &mut [f32], width: usize, inv_totals: &mut [f32]) {
    for j0 in (0..width).step_by(LANES) {
        let mut max = [f32::NEG_INFINITY; LANES];
        for row in scores.chunks_exact(width) {
            for (m, v) in max.iter_mut().zip(&row[j0..j0 + LANES]) {
                *m = if *v > *m { *v } else { *m }; // not f32::max: its NaN rules cost more
            }
        }
        let mut totals = [0f32; LANES];
        for row in scores.chunks_exact_mut(width) {
            for ((v, m), total) in row[j0..j0 + LANES].iter_mut().zip(&max).zip(&mut totals) {
                *v = exp(*v - m);
                *total += *v;
            }
        }
        for (inv, total) in inv_totals[j0..j0 + LANES].iter_mut().zip(totals) {
            *inv = 1.0 / total;
        }
    }
}

/// e^x in f32 for x <= 0 (a softmax's scores less their maximum), from + - * and shifts
/// (Cephes' expf: x = k ln 2 + r, a degree-7 polynomial in r), within about 2 ulp. Unlike the C
/// library's expf it is the same on every processor, and a row of them vectorises. Below -87
/// it returns e^-87 (about 1.6e-38, near the smallest normal f32): beside the column maximum's
/// 1 it weighs nothing, and the check costs less than a 0 would.
#[inline(always)]
fn exp(x: f32) -> f32 {
    // 1.5 * 2^23: adding it rounds x log2(e) to an integer k, held in the low bits of y.
    const ROUNDER: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    let y = x.mul_add(std::f32::consts::LOG2_E, ROUNDER);
    let k = y - ROUNDER;
    // ln 2 in two parts, the first with few bits, so that r keeps its digits.
    let r = k.mul_add(2.121_944_4e-4, k.mul_add(-0.693_359_4, x));
    let p = 1.987_569_2e-4f32
        .mul_add(r, 1.398_2e-3)
        .mul_add(r, 8.333_452e-3)
        .mul_add(r, 4.166_579_6e-2)
        .mul_add(r, 1.666_666_5e-1)
        .mul_add(r, 0.5);
    let e = p.mul_add(r * r, r) + 1.0;
    // 2^k: y's bits end in k (two's complement); shifted into the exponent field, the bits
    // above fall off.
    e * f32::from_bits(y.to_bits().wrapping_add(127) << 23)
}

#[inline(always)]
fn layer_norm(x: &[f32], (scale, bias): &(Vec<f32>, Vec<f32>), y: &mut [f32]) {
    let n = x.len() as f32;
    let mean = lane_sum(x, |v| v) / n;
    let var = lane_sum(x, |v| (v - mean) * (v - mean)) / n;
    let inv = 1.0 / (var + LN_EPS).sqrt();
    for (((o, v), g), b) in y.iter_mut().zip(x).zip(scale).zip(bias) {
        *o = ((v - mean) * inv).mul_add(*g, *b);
    }
}

/// The sum of f(x) over `x` in `LANES` lanes (x[i] into lane i % LANES), the lanes then added
/// in order. Not one running sum: its chain of dependent additions is 8 times longer.
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += f(*v);
        }
    }
    for (lane, v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += f(*v);
    }
    lanes.iter().sum()
}

/// gate = gelu(gate) * up, element by element (the GEGLU of the feed-forward block).
#[inline(always)]
fn geglu(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = gelu(*g) * u;
    }
}

/// GELU with the exact error function: 0.5 x (1 + erf(x / sqrt 2)).
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf in f32 as a ratio of an odd and an even polynomial on [-4, 4] (the approximation Eigen
/// and XLA use; outside, erf is +-1 to f32 precision), within 4.5e-7 of the exact value
/// (tested). Branch-free with only + - * /, so a row of them vectorises and the result is the
/// same on every processor; the C library's erff branches per value and calls expf. At 50
/// boids a call needs about 10,000 of them.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = (-2.726_142_3e-10f32)
        .mul_add(x2, 2.770_681_4e-8)
        .mul_add(x2, -2.101_024e-6)
        .mul_add(x2, -5.692_506_4e-5)
        .mul_add(x2, -7.349_906_3e-4)
        .mul_add(x2, -2.954_6e-3)
        .mul_add(x2, -1.609_603_3e-2);
    let q = (-1.456_607_2e-5f32)
        .mul_add(x2, -2.133_740_6e-4)
        .mul_add(x2, -1.682_827e-3)
        .mul_add(x2, -7.373_329_2e-3)
        .mul_add(x2, -1.426_474e-2);
    x * p / q
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Rng;

    fn numbers(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.next_f64() * 8.0 - 4.0) as f32)
            .collect()
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_the_exact_value() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 87.0 * i as f32 / 200_000.0;
            let exact = (x as f64).exp();
            worst = worst.max(((exp(x) as f64) - exact).abs() / exact);
        }
        // 2^-23 is one ulp of f32 relative to the value.
        assert!(
            worst < 3.0 * f32::EPSILON as f64,
            "largest relative error {worst}"
        );
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-87.5), exp(-87.0));
        assert_eq!(exp(f32::NEG_INFINITY), exp(-87.0));
        assert!(exp(-87.0) > 0.0 && exp(-87.0) < 2e-38);
    }

    #[test]
    fn erf_is_within_5e_7_of_the_exact_value() {
        let mut worst = 0f64;
        for i in 0..=400_000 {
            let x = -6.0 + 12.0 * i as f32 / 400_000.0;
            worst = worst.max((erf(x) as f64 - libm::erf(x as f64)).abs());
        }
        assert!(worst < 5e-7, "largest error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-1.5), -erf(1.5));
        // Near 0, erf(x) is about 2x/sqrt(pi): the relative error stays small too.
        let tiny = 1e-6f32;
        let exact = libm::erf(tiny as f64);
        assert!(((erf(tiny) as f64 - exact) / exact).abs() < 4.0 * f32::EPSILON as f64);
    }

    /// Every wide build this processor runs, against the baseline. A processor without AVX2
    /// fails the test: it could compare nothing.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_wide_builds_equal_the_baseline_bit_for_bit() {
        let build = Build::detect();
        assert_ne!(
            build,
            Build::Baseline,
            "this test compares the AVX2+FMA (and AVX-512) builds and needs such a processor"
        );
        eprintln!(
            "compared: AVX2+FMA{}",
            if build == Build::Avx512 {
                " and AVX-512F"
            } else {
                " (no AVX-512F here)"
            }
        );
        let mut rng = Rng::new(7);
        for (d, heads, ffn) in [(48, 4, 96), (20, 5, 36)] {
            let file = random_browser_file(&mut rng, d, heads, 2, ffn);
            let net = Transformer::from_value(&file, "random").expect("valid weights");
            let mut scratch = Scratch::default();
            for boids in [0, 1, 5, 13, 50, 61] {
                let state = crate::predator::bench::flock(boids);
                let obs = Observation::encode(&state);
                let plain = net.forward_body::<Baseline>(&obs, &mut scratch);
                assert!(plain.iter().all(|a| a.is_finite() && a.abs() < 1.0));
                // SAFETY: `detect` found AVX2 and FMA (and AVX-512F for the second).
                let mut wide = vec![("AVX2+FMA", unsafe { net.forward_avx2(&obs, &mut scratch) })];
                if build == Build::Avx512 {
                    wide.push(("AVX-512F", unsafe {
                        net.forward_avx512(&obs, &mut scratch)
                    }));
                }
                for (name, out) in wide {
                    assert_eq!(
                        plain.map(f32::to_bits),
                        out.map(f32::to_bits),
                        "{name}, {boids} boids"
                    );
                }
                assert_eq!(
                    net.forward(&obs, &mut scratch).map(f32::to_bits),
                    plain.map(f32::to_bits)
                );
            }
        }
    }

    #[test]
    fn the_tiled_product_sums_as_the_one_row_product_does() {
        let mut rng = Rng::new(8);
        for (inputs, outputs, rows) in [(12, 51, 51), (51, 12, 51), (48, 144, 7), (5, 3, 2)] {
            let (wt, b, x) = (
                numbers(&mut rng, inputs * outputs),
                numbers(&mut rng, outputs),
                numbers(&mut rng, rows * inputs),
            );
            let mut tiled = vec![0.0; rows * outputs];
            let shape = Shape::new(inputs, outputs, rows);
            linear_rows(&wt, &b, &x, &mut tiled, shape);
            for r in 0..rows {
                let mut one = vec![0.0; outputs];
                linear(&wt, &b, &x[r * inputs..(r + 1) * inputs], &mut one);
                assert_eq!(
                    one.map_bits(),
                    tiled[r * outputs..(r + 1) * outputs].map_bits(),
                    "row {r} of {rows}, {inputs} x {outputs}"
                );
            }
        }
    }

    #[test]
    fn the_softmax_of_each_column_is_that_of_the_column_alone() {
        let mut rng = Rng::new(9);
        for (tokens, width) in [(1, 8), (7, 8), (13, 16), (53, 56)] {
            let matrix: Vec<f32> = numbers(&mut rng, tokens * width)
                .iter()
                .map(|v| 8.0 * v)
                .collect();
            let mut exps = matrix.clone();
            let mut inv = vec![0.0; width];
            softmax_columns(&mut exps, width, &mut inv);
            for j in 0..width {
                let column: Vec<f64> = (0..tokens).map(|t| matrix[t * width + j] as f64).collect();
                let max = column.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = column.iter().map(|v| (v - max).exp()).sum();
                for (t, v) in column.iter().enumerate() {
                    let want = (v - max).exp() / total;
                    let got = (exps[t * width + j] * inv[j]) as f64;
                    assert!(
                        (got - want).abs() < 1e-6,
                        "column {j} row {t}: {got} vs {want}"
                    );
                }
                // The same column among other numbers gives the same bits.
                let mut alone: Vec<f32> = (0..tokens * LANES)
                    .map(|k| {
                        if k % LANES == 0 {
                            matrix[(k / LANES) * width + j]
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let mut alone_inv = vec![0.0; LANES];
                softmax_columns(&mut alone, LANES, &mut alone_inv);
                assert_eq!(alone_inv[0].to_bits(), inv[j].to_bits());
                for t in 0..tokens {
                    assert_eq!(alone[t * LANES].to_bits(), exps[t * width + j].to_bits());
                }
            }
        }
    }

    trait Bits {
        fn map_bits(&self) -> Vec<u32>;
    }

    impl Bits for [f32] {
        fn map_bits(&self) -> Vec<u32> {
            self.iter().map(|v| v.to_bits()).collect()
        }
    }
}
