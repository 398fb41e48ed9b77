//! Players compared on the same evaluation episodes (paired): mean catch rate with a 95%
//! interval, each player's paired difference to the first, and speed. Evaluation episodes come
//! from their own random stream, which no training shard uses.

use super::episode::{run, Protocol};
use super::players::PlayerSpec;
use crate::core::stats::Z95;
use crate::core::Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// Stream ids: far above any shard index, so evaluation never replays a training episode.
pub const EVAL_STREAM: u64 = 0x6576_616c_0000_0000;
const PLAYER_STREAM: u64 = 0x706c_6179_0000_0000;

#[derive(Serialize, Debug)]
pub struct PlayerReport {
    pub player: String,
    pub catch_rate: f64,
    pub catch_rate_ci95: [f64; 2],
    /// Mean over episodes of (this player's catch rate - the first player's), and its interval.
    pub paired_difference: f64,
    pub paired_difference_ci95: [f64; 2],
    pub episodes_cleared: u64,
    /// Median steps to catch every boid over the cleared episodes.
    pub median_steps_to_clear: Option<f64>,
    pub steps_per_second: f64,
    pub us_per_decision: f64,
}

#[derive(Serialize, Debug)]
pub struct MatchReport {
    pub protocol: String,
    pub episodes: u64,
    pub seed: u64,
    pub players: Vec<PlayerReport>,
    pub seconds: f64,
}

/// Mean and its 95% normal interval.
pub fn mean_ci(values: &[f64]) -> (f64, [f64; 2]) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (0.0, [0.0, 0.0]);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let half = Z95 * (var / n).sqrt();
    (mean, [mean - half, mean + half])
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let m = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[m]
    } else {
        (values[m - 1] + values[m]) / 2.0
    })
}

pub fn play_match(
    players: &[PlayerSpec],
    names: &[String],
    protocol: Protocol,
    episodes: u64,
    seed: u64,
) -> MatchReport {
    let started = Instant::now();
    // outcomes[episode][player]
    let outcomes: Vec<Vec<(super::episode::Outcome, f64)>> = (0..episodes)
        .into_par_iter()
        .map(|i| {
            let start =
                protocol.initial_state(i as u32, &mut Rng::for_episode(seed, EVAL_STREAM, i));
            players
                .iter()
                .map(|spec| {
                    let mut player = spec.build(Rng::for_episode(seed, PLAYER_STREAM, i));
                    let t = Instant::now();
                    let outcome = run(
                        start.clone(),
                        protocol.steps(),
                        player.as_mut(),
                        |_, _, _| {},
                    );
                    (outcome, t.elapsed().as_secs_f64())
                })
                .collect()
        })
        .collect();
    let reports = (0..players.len())
        .map(|p| {
            let rates: Vec<f64> = outcomes.iter().map(|o| o[p].0.catch_rate()).collect();
            let diffs: Vec<f64> = outcomes
                .iter()
                .map(|o| o[p].0.catch_rate() - o[0].0.catch_rate())
                .collect();
            // Normal intervals, cut to what the quantity can be (a rate in [0, 1]).
            let (catch_rate, catch_rate_ci95) = mean_ci(&rates);
            let catch_rate_ci95 = catch_rate_ci95.map(|x| x.clamp(0.0, 1.0));
            let (paired_difference, paired_difference_ci95) = mean_ci(&diffs);
            let paired_difference_ci95 = paired_difference_ci95.map(|x| x.clamp(-1.0, 1.0));
            let cleared: Vec<f64> = outcomes
                .iter()
                .filter_map(|o| o[p].0.cleared_at.map(f64::from))
                .collect();
            let steps: u64 = outcomes.iter().map(|o| o[p].0.steps as u64).sum();
            let seconds: f64 = outcomes.iter().map(|o| o[p].1).sum();
            let nanos: u64 = outcomes.iter().map(|o| o[p].0.nanos_acting).sum();
            PlayerReport {
                player: names[p].clone(),
                catch_rate,
                catch_rate_ci95,
                paired_difference,
                paired_difference_ci95,
                episodes_cleared: cleared.len() as u64,
                median_steps_to_clear: median(cleared),
                steps_per_second: steps as f64 / seconds.max(1e-12),
                us_per_decision: nanos as f64 / 1000.0 / steps.max(1) as f64,
            }
        })
        .collect();
    let name = match protocol {
        Protocol::Default { .. } => "default",
        Protocol::Legacy => "legacy",
    };
    MatchReport {
        protocol: name.into(),
        episodes,
        seed,
        players: reports,
        seconds: started.elapsed().as_secs_f64(),
    }
}
