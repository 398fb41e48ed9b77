//! Runtime dispatch of the kernels: the builds of `forward` (`Build`, the widest this processor
//! runs found once at load) and the kernels compiled for each (`Kernels`).

use super::kernels::{geglu, linear_rows, softmax_columns, Shape};

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
pub(super) trait Kernels {
    fn linear_rows(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], shape: Shape);
    fn softmax_columns(scores: &mut [f32], width: usize, inv_totals: &mut [f32]);
    fn geglu(gate: &mut [f32], up: &[f32]);
}

pub(super) struct Baseline;

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
        pub(super) struct $name;

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
