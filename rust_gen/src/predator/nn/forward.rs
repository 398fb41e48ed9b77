//! The transformer's forward pass (docs/predator.md, section 8): the token embeddings, the
//! pre-norm blocks (the last for the CLS token only) and the output, over one `Scratch`.

use super::kernels::{layer_norm, linear, Shape, LANES};
#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2Fma, Avx512};
use super::simd::{Baseline, Build, Kernels};
use crate::predator::encode::Observation;

/// One block's weights, as `weights` lays them out at load.
pub(super) struct Block {
    pub(super) ln: (Vec<f32>, Vec<f32>),
    // Matrices are stored transposed at load, [in][out], but for the queries' and the keys'
    // (see `block`). The queries' weights [out][in] with their bias as a last column, all times
    // 1/sqrt(head size): the queries come out transposed.
    pub(super) q_wb: Vec<f32>,
    pub(super) k_w: Vec<f32>, // [out][in], as in the file; no bias (see `block`)
    pub(super) v_w: Vec<f32>,
    pub(super) v_b: Vec<f32>,
    pub(super) out_w: Vec<f32>, // [d][d]
    pub(super) out_b: Vec<f32>,
    pub(super) ffn_ln: (Vec<f32>, Vec<f32>),
    pub(super) gate_w: Vec<f32>, // [f][d]
    pub(super) gate_b: Vec<f32>,
    pub(super) up_w: Vec<f32>, // [f][d]
    pub(super) up_b: Vec<f32>,
    pub(super) down_w: Vec<f32>, // [d][f]
    pub(super) down_b: Vec<f32>,
}

/// The network, its weights laid out for `forward` (`weights` loads them).
pub struct Transformer {
    pub d_model: usize,
    pub n_heads: usize,
    pub ffn_hidden: usize,
    /// The widest build of `forward` this processor runs, found once at load.
    pub(super) build: Build,
    pub(super) cls: Vec<f32>,              // cls_embedding + type.cls
    pub(super) ctx: (Vec<f32>, Vec<f32>),  // W [d][2], bias + type.ctx
    pub(super) pred: (Vec<f32>, Vec<f32>), // W [d][4], bias + type.predator
    pub(super) boid: (Vec<f32>, Vec<f32>), // W [d][4], bias + type.boid
    pub(super) blocks: Vec<Block>,
    pub(super) output: (Vec<f32>, Vec<f32>), // W [2][d], b [2]
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

impl Transformer {
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
    pub(super) fn forward_avx2(&self, obs: &Observation, s: &mut Scratch) -> [f32; 2] {
        self.forward_body::<Avx2Fma>(obs, s)
    }

    /// `forward` for 16-wide vectors, where the processor has them: the same code, so the same
    /// bits (tested), but each 16-output tile of a product is one vector instead of two, and
    /// the compiler has 32 vector registers instead of 16 (about a fifth faster at 50 boids).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) fn forward_avx512(&self, obs: &Observation, s: &mut Scratch) -> [f32; 2] {
        self.forward_body::<Avx512>(obs, s)
    }

    #[inline(always)]
    pub(super) fn forward_body<K: Kernels>(&self, obs: &Observation, s: &mut Scratch) -> [f32; 2] {
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
