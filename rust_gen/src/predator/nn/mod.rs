//! The predator transformer for inference (docs/predator.md, sections 7 and 8), read from the
//! browser file or from our own file. f32 arithmetic; every buffer is allocated once, so a call
//! allocates nothing (it grows only for a larger flock than any seen before).
//!
//! `weights` reads the files, `forward` runs the network, `kernels` holds the arithmetic it
//! spends its time in and `simd` the builds of those kernels for the processor's vectors.

mod forward;
mod kernels;
mod simd;
mod weights;

// The one test compares the x86_64 builds.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

pub use forward::{Scratch, Transformer};
pub use simd::Build;
pub use weights::{random_browser_file, OUR_FORMAT};
