//! Tests of the whole network: every build of `forward` gives the same bits.

use super::forward::{Scratch, Transformer};
use super::simd::{Baseline, Build};
use super::weights::random_browser_file;
use crate::core::Rng;
use crate::predator::encode::Observation;
use crate::predator::sim::flock;

/// Every wide build this processor runs, against the baseline. A processor without AVX2
/// fails the test: it could compare nothing.
#[test]
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
            let state = flock(boids);
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
