//! The tensors of an Ur shard (layout in docs/ur.md, section 5), written straight from the
//! games' samples.

use super::features::NUM_FEATURES;
use super::game::{GameRecord, Sample};
use super::rules::PIECES;
use crate::core::safetensors::{put_f32s, tensor_of, Dtype, Tensor};
use std::io::{self, Write};

/// Bytes one sample costs in a shard file (features, value, policy, legal, move values, game,
/// ply).
pub const BYTES_PER_SAMPLE: usize = NUM_FEATURES * 4 + 4 + PIECES * 4 + PIECES + PIECES * 4 + 4 + 2;

/// A tensor with one row per sample, in game order, written by `put`.
fn per_sample<'a>(
    games: &'a [GameRecord],
    name: &'static str,
    dtype: Dtype,
    width: Option<usize>,
    put: impl Fn(&Sample, &mut dyn Write) -> io::Result<()> + 'a,
) -> Tensor<'a> {
    let rows: usize = games.iter().map(|g| g.samples.len()).sum();
    let shape = width.map_or(vec![rows], |width| vec![rows, width]);
    tensor_of(name, dtype, shape, games, move |g, out| {
        g.samples.iter().try_for_each(|s| put(s, out))
    })
}

/// The tensors of a shard, in file order.
pub fn tensors(games: &[GameRecord]) -> Vec<Tensor<'_>> {
    let one_hot =
        |s: &Sample| std::array::from_fn(|i| f32::from(u8::from(i == s.best_piece as usize)));
    let legal = |s: &Sample| -> [u8; PIECES] { std::array::from_fn(|i| (s.legal >> i) & 1) };
    vec![
        per_sample(
            games,
            "features",
            Dtype::F32,
            Some(NUM_FEATURES),
            |s, out| put_f32s(out, &s.features),
        ),
        per_sample(games, "value", Dtype::F32, None, |s, out| {
            put_f32s(out, &[s.value])
        }),
        per_sample(games, "policy", Dtype::F32, Some(PIECES), move |s, out| {
            put_f32s::<PIECES>(out, &one_hot(s))
        }),
        per_sample(games, "legal", Dtype::U8, Some(PIECES), move |s, out| {
            out.write_all(&legal(s))
        }),
        per_sample(games, "move_values", Dtype::F32, Some(PIECES), |s, out| {
            put_f32s(out, &s.move_values)
        }),
        per_sample(games, "game", Dtype::U32, None, |s, out| {
            out.write_all(&s.game.to_le_bytes())
        }),
        per_sample(games, "ply", Dtype::U16, None, |s, out| {
            out.write_all(&s.ply.to_le_bytes())
        }),
    ]
}
