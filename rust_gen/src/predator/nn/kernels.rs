//! The arithmetic kernels of the forward pass: the tiled matrix product, the column softmax,
//! the layer norm and the GEGLU, with their own exp and erf. Each sums in a fixed order with
//! fused multiply-adds, so the loops vectorise and every processor gives the same bits.

const LN_EPS: f32 = 1e-5;
/// Sums run in this many lanes, combined in a fixed order: the loops vectorise, and every
/// processor adds in the same order.
pub(super) const LANES: usize = 8;

/// The shape of a product y = x W + b: x is rows x inputs, W inputs x outputs (stored [in][out]),
/// y rows x outputs; each matrix's rows lie `ld*` numbers apart in its slice (its leading
/// dimension), so a product can read and write columns of a larger matrix in place. A row of
/// x may also be a column (`x_step`: the distance between its numbers), so a product can read
/// x transposed.
#[derive(Clone, Copy)]
pub(super) struct Shape {
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
    pub(super) fn new(inputs: usize, outputs: usize, rows: usize) -> Shape {
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

    pub(super) fn strides(self, ldx: usize, ldw: usize, ldy: usize) -> Shape {
        Shape {
            ldx,
            ldw,
            ldy,
            ..self
        }
    }

    /// x read transposed: its rows are columns of a matrix whose rows lie `ld` apart.
    pub(super) fn x_transposed(self, ld: usize) -> Shape {
        Shape {
            ldx: 1,
            x_step: ld,
            ..self
        }
    }
}

/// y = W x + b, with W stored transposed ([in][out], see `weights::transpose`): the inner loop
/// runs along the outputs, independent lanes the compiler vectorizes.
#[inline(always)]
pub(super) fn linear(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
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
pub(super) fn linear_rows(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], shape: Shape) {
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

/// A softmax down each column of `scores` (rows of `width` numbers, a multiple of 8) but for
/// its last step: in place, e^(v - the column's max), and 1 / each column's total into
/// `inv_totals`. Eight columns at a time run in the lanes of a vector; each column's maximum
/// and total go down its rows in order, so the result is the same on every processor.
#[inline(always)]
pub(super) fn softmax_columns(scores: &mut [f32], width: usize, inv_totals: &mut [f32]) {
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
pub(super) fn layer_norm(x: &[f32], (scale, bias): &(Vec<f32>, Vec<f32>), y: &mut [f32]) {
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
pub(super) fn geglu(gate: &mut [f32], up: &[f32]) {
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
