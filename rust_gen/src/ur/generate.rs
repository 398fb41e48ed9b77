//! Plays the games of one shard on the current rayon pool, in game order.

use super::game::{play_game, GameRecord};
use crate::rng::Rng;
use indicatif::ProgressBar;
use rayon::prelude::*;

#[derive(Clone, Copy, Debug)]
pub struct GenerateConfig {
    pub seed: u64,
    pub shard_index: u32,
    pub games: u32,
    pub depth: u32,
    pub exploration: f64,
}

/// Every game's stream derives from (seed, shard index, game index), and rayon's indexed
/// collect keeps game order, so the result does not depend on the thread count.
pub fn generate_games(cfg: &GenerateConfig, progress: &ProgressBar) -> Vec<GameRecord> {
    (0..cfg.games)
        .into_par_iter()
        .map(|game| {
            let mut rng = Rng::for_game(cfg.seed, cfg.shard_index as u64, game as u64);
            let record = play_game(game, &mut rng, cfg.depth, cfg.exploration);
            progress.inc(1);
            record
        })
        .collect()
}
