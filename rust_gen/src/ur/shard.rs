//! One shard of Ur samples as a safetensors file (layout in the README and shared/design.md).

use super::features::NUM_FEATURES;
use super::game::Sample;
use super::rules::PIECES;
use crate::safetensors::{f32_bytes, write_atomic, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// Bytes one sample costs in a shard file (features, value, policy, legal, move values, game,
/// ply); the in-memory sample during generation is about the same.
pub const BYTES_PER_SAMPLE: usize = NUM_FEATURES * 4 + 4 + PIECES * 4 + PIECES + PIECES * 4 + 4 + 2;

pub fn shard_file_name(shard_index: u32) -> String {
    format!("shard-{shard_index:05}.safetensors")
}

/// The tensors of a shard, in file order.
pub fn tensors(samples: &[Sample]) -> Vec<Tensor> {
    let n = samples.len();
    let policy = samples
        .iter()
        .flat_map(|s| (0..PIECES).map(move |i| if i == s.best_piece as usize { 1.0 } else { 0.0 }));
    let legal: Vec<u8> = samples
        .iter()
        .flat_map(|s| (0..PIECES).map(move |i| (s.legal >> i) & 1))
        .collect();
    vec![
        Tensor {
            name: "features",
            dtype: "F32",
            shape: vec![n, NUM_FEATURES],
            data: f32_bytes(samples.iter().flat_map(|s| s.features)),
        },
        Tensor {
            name: "value",
            dtype: "F32",
            shape: vec![n],
            data: f32_bytes(samples.iter().map(|s| s.value)),
        },
        Tensor {
            name: "policy",
            dtype: "F32",
            shape: vec![n, PIECES],
            data: f32_bytes(policy),
        },
        Tensor {
            name: "legal",
            dtype: "U8",
            shape: vec![n, PIECES],
            data: legal,
        },
        Tensor {
            name: "move_values",
            dtype: "F32",
            shape: vec![n, PIECES],
            data: f32_bytes(samples.iter().flat_map(|s| s.move_values)),
        },
        Tensor {
            name: "game",
            dtype: "U32",
            shape: vec![n],
            data: samples.iter().flat_map(|s| s.game.to_le_bytes()).collect(),
        },
        Tensor {
            name: "ply",
            dtype: "U16",
            shape: vec![n],
            data: samples.iter().flat_map(|s| s.ply.to_le_bytes()).collect(),
        },
    ]
}

/// Writes the shard atomically into `dir`; returns the file size.
pub fn write_shard(
    dir: &Path,
    shard_index: u32,
    samples: &[Sample],
    metadata: &BTreeMap<String, String>,
) -> std::io::Result<u64> {
    let name = shard_file_name(shard_index);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = write_atomic(&dir.join(&name), &tmp, &tensors(samples), metadata);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
