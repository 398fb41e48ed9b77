//! Matches between two players: seats alternate, games run on every core, results depend only
//! on the seed (timings aside). Games come in pairs that replay the same dice (and the same
//! random choices) with the seats swapped, so the luck of the dice falls on both players
//! alike: two identical players score exactly 50%, and between different players the pairing
//! removes much of the dice's variance. Each game on its own is still a fair draw of the dice.

use super::dice::Dice;
use super::game::{advance, decision_loss, PLY_CAP};
use super::players::{Player, PlayerSpec};
use super::rules::Position;
use super::solve::Solution;
use crate::core::stats::wilson;
use crate::core::Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// Stream ids that keep dice and the players' own randomness apart.
const DICE_STREAM: u64 = 0x6469_6365;
const CHOICE_STREAM: u64 = 0x6368_6f69;

#[derive(Clone, Copy, Default)]
struct GameOutcome {
    /// Winner: Some(true) when A won.
    a_won: Option<bool>,
    plies: u32,
    moves: [u64; 2],
    nanos: [u64; 2],
    /// Win probability given away against perfect play, summed over each side's decisions.
    loss: [f64; 2],
}

/// Plays game `index`: A sits as P1 in even games and as P2 in odd ones, and games 2k and
/// 2k + 1 draw from the same streams.
fn play_one(
    a: &PlayerSpec,
    b: &PlayerSpec,
    seed: u64,
    index: u64,
    table: Option<&Solution>,
) -> GameOutcome {
    let mut dice = Rng::for_episode(seed, DICE_STREAM, index / 2);
    let mut choices = Rng::for_episode(seed, CHOICE_STREAM, index / 2);
    let a_seat = (index % 2) as usize;
    let mut players = [Player::new(a), Player::new(b)]; // by side: 0 = A, 1 = B
    let mut out = GameOutcome::default();
    let (mut pos, mut mover) = (Position::initial(), 0usize);
    while pos.winner().is_none() && out.plies < PLY_CAP {
        let roll = dice.roll();
        let legal = pos.legal_moves(mover, roll);
        let piece = if legal == 0 {
            None
        } else {
            let side = usize::from(mover != a_seat);
            let started = Instant::now();
            let piece = players[side].choose(&pos, mover, roll, legal, &mut choices);
            out.nanos[side] += started.elapsed().as_nanos() as u64;
            out.moves[side] += 1;
            if let Some(table) = table {
                out.loss[side] += decision_loss(table, &pos, mover, roll, legal, piece);
            }
            Some(piece)
        };
        (pos, mover) = advance(&pos, mover, roll, piece);
        out.plies += 1;
    }
    out.a_won = pos.winner().map(|w| w == a_seat);
    out
}

#[derive(Serialize, Debug)]
pub struct MatchReport {
    pub a: String,
    pub b: String,
    pub games: u64,
    pub seed: u64,
    pub a_wins: u64,
    pub b_wins: u64,
    pub unfinished: u64,
    /// Wins of A over all games (unfinished games count as not won).
    pub a_win_rate: f64,
    /// 95% Wilson score interval of that rate.
    pub a_win_rate_ci95: [f64; 2],
    pub mean_plies: f64,
    pub a_us_per_move: f64,
    pub b_us_per_move: f64,
    /// With the solved game's table: the mean win probability each player gave away per
    /// decision against perfect play.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a_loss_per_decision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b_loss_per_decision: Option<f64>,
    pub seconds: f64,
}

/// Plays `games` games; with `table` (the solved game) it also measures each player's loss
/// per decision against perfect play.
pub fn play_match(
    a: &PlayerSpec,
    b: &PlayerSpec,
    games: u64,
    seed: u64,
    table: Option<&Solution>,
) -> MatchReport {
    let started = Instant::now();
    let outcomes: Vec<GameOutcome> = (0..games)
        .into_par_iter()
        .map(|i| play_one(a, b, seed, i, table))
        .collect();
    let count = |want: Option<bool>| outcomes.iter().filter(|o| o.a_won == want).count() as u64;
    let a_wins = count(Some(true));
    let per_move = |side: usize| {
        let moves: u64 = outcomes.iter().map(|o| o.moves[side]).sum();
        let nanos: u64 = outcomes.iter().map(|o| o.nanos[side]).sum();
        nanos as f64 / 1000.0 / moves.max(1) as f64
    };
    let loss = |side: usize| {
        let moves: u64 = outcomes.iter().map(|o| o.moves[side]).sum();
        outcomes.iter().map(|o| o.loss[side]).sum::<f64>() / moves.max(1) as f64
    };
    MatchReport {
        a: a.text.clone(),
        b: b.text.clone(),
        games,
        seed,
        a_wins,
        b_wins: count(Some(false)),
        unfinished: count(None),
        a_win_rate: a_wins as f64 / games.max(1) as f64,
        a_win_rate_ci95: wilson(a_wins, games),
        mean_plies: outcomes.iter().map(|o| o.plies as f64).sum::<f64>() / games.max(1) as f64,
        a_us_per_move: per_move(0),
        b_us_per_move: per_move(1),
        a_loss_per_decision: table.map(|_| loss(0)),
        b_loss_per_decision: table.map(|_| loss(1)),
        seconds: started.elapsed().as_secs_f64(),
    }
}
