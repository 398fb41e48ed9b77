//! The tensors of an Ur shard (layout in docs/ur.md, section 5).

use super::features::NUM_FEATURES;
use super::game::{GameRecord, Sample};
use super::rules::PIECES;
use crate::core::safetensors::Tensor;

/// Bytes one sample costs in a shard file (features, value, policy, legal, move values, game,
/// ply).
pub const BYTES_PER_SAMPLE: usize = NUM_FEATURES * 4 + 4 + PIECES * 4 + PIECES + PIECES * 4 + 4 + 2;

/// One tensor's little-endian bytes: `width` bytes per sample, written by `put`, in game order.
fn column(
    games: &[GameRecord],
    rows: usize,
    width: usize,
    put: impl Fn(&Sample, &mut Vec<u8>),
) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows * width);
    for sample in games.iter().flat_map(|g| &g.samples) {
        put(sample, &mut out);
    }
    out
}

fn put_f32s(out: &mut Vec<u8>, values: &[f32]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// The tensors of a shard, in file order: every game's samples, in game order.
pub fn tensors(games: &[GameRecord]) -> Vec<Tensor> {
    let n: usize = games.iter().map(|g| g.samples.len()).sum();
    let tensor = |name, dtype, shape: Vec<usize>, data| Tensor {
        name,
        dtype,
        shape,
        data,
    };
    vec![
        tensor(
            "features",
            "F32",
            vec![n, NUM_FEATURES],
            column(games, n, NUM_FEATURES * 4, |s, out| {
                put_f32s(out, &s.features)
            }),
        ),
        tensor(
            "value",
            "F32",
            vec![n],
            column(games, n, 4, |s, out| put_f32s(out, &[s.value])),
        ),
        tensor(
            "policy",
            "F32",
            vec![n, PIECES],
            column(games, n, PIECES * 4, |s, out| {
                for i in 0..PIECES {
                    put_f32s(out, &[if i == s.best_piece as usize { 1.0 } else { 0.0 }]);
                }
            }),
        ),
        tensor(
            "legal",
            "U8",
            vec![n, PIECES],
            column(games, n, PIECES, |s, out| {
                out.extend((0..PIECES).map(|i| (s.legal >> i) & 1))
            }),
        ),
        tensor(
            "move_values",
            "F32",
            vec![n, PIECES],
            column(games, n, PIECES * 4, |s, out| put_f32s(out, &s.move_values)),
        ),
        tensor(
            "game",
            "U32",
            vec![n],
            column(games, n, 4, |s, out| {
                out.extend_from_slice(&s.game.to_le_bytes())
            }),
        ),
        tensor(
            "ply",
            "U16",
            vec![n],
            column(games, n, 2, |s, out| {
                out.extend_from_slice(&s.ply.to_le_bytes())
            }),
        ),
    ]
}
