//! Players for matches (spec section 8): random, greedy, emm:D (the teacher), and four ways to
//! play a trained network: policy, value (one ply of lookahead, from the mover's side), guided
//! (the value player with the policy's log-probabilities as a small prior) and legacy (the old
//! engine's blended rule, kept for comparison); and perfect play from the solved game's table
//! (`rust_gen ur solve`).

use super::eval::evaluate;
use super::features::{features, NUM_FEATURES};
use super::game::{advance, random_piece};
use super::nn::{Networks, Scratch};
use super::rules::{
    pieces_of, MoveMask, Position, PIECES, ROLL_TOTAL, ROLL_WEIGHTS, ROSETTE_TRACK_MASK,
    SHARED_MASK,
};
use super::search::{Searcher, MAX_DEPTH};
use super::solve::{solver_state, Solution};
use crate::core::Rng;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone)]
pub enum Kind {
    Random,
    Greedy,
    Emm(u32),
    Policy(Arc<Networks>),
    Value(Arc<Networks>),
    Guided(Arc<Networks>),
    Legacy(Arc<Networks>),
    Perfect(Arc<Solution>),
}

/// A parsed player description such as `emm:3` or `value:model/weights.json`.
#[derive(Clone)]
pub struct PlayerSpec {
    pub kind: Kind,
    pub text: String,
}

pub const SPEC_HELP: &str = "random, greedy, emm:D (D in 1..=6), policy:FILE, value:FILE, guided:FILE, legacy:FILE, perfect:FILE";

/// The guided player's score for a move: its one-ply value (from the mover's side, in [-1, 1])
/// plus this weight times the policy's log-probability of the move among the legal ones. The
/// two networks err apart, so the policy settles close calls the value network gets wrong. Tuned
/// on 4,000 games against perfect play (0.001 to 0.03 tried; 0.002 to 0.003 best), then checked
/// on 40,000 others: the loss per decision fell by a quarter (docs/results/ur.md, "The perfect teacher").
pub const GUIDE_WEIGHT: f32 = 0.0025;

impl PlayerSpec {
    pub fn parse(text: &str) -> Result<PlayerSpec, String> {
        PlayerSpec::parse_with_table(text, None)
    }

    /// As `parse`, and a bare `perfect` plays from `table` (the match's `--table`), so that one
    /// process holds the table once.
    pub fn parse_with_table(
        text: &str,
        table: Option<&Arc<Solution>>,
    ) -> Result<PlayerSpec, String> {
        let (name, arg) = text.split_once(':').unwrap_or((text, ""));
        let nets = || -> Result<Arc<Networks>, String> {
            if arg.is_empty() {
                return Err(format!(
                    "'{text}': {name} needs a weights file, as in {name}:model/weights.json"
                ));
            }
            Networks::load(Path::new(arg))
                .map(Arc::new)
                .map_err(|e| e.to_string())
        };
        let kind = match name {
            "random" if arg.is_empty() => Kind::Random,
            "greedy" if arg.is_empty() => Kind::Greedy,
            "emm" => match arg.parse::<u32>() {
                Ok(d) if (1..=MAX_DEPTH).contains(&d) => Kind::Emm(d),
                _ => {
                    return Err(format!(
                        "'{text}': the depth of emm:D must be in 1..={MAX_DEPTH}"
                    ))
                }
            },
            "policy" => Kind::Policy(nets()?),
            "value" => Kind::Value(nets()?),
            "guided" => Kind::Guided(nets()?),
            "legacy" => Kind::Legacy(nets()?),
            "perfect" if !arg.is_empty() => Kind::Perfect(Arc::new(Solution::load_game(Path::new(arg))?)),
            "perfect" if table.is_some() => Kind::Perfect(Arc::clone(table.expect("checked"))),
            "perfect" => {
                return Err(format!(
                    "'{text}': perfect needs a table from `rust_gen ur solve`, as in perfect:ur7.safetensors (or a bare perfect with --table)"
                ))
            }
            _ => return Err(format!("'{text}' is not a player: expected {SPEC_HELP}")),
        };
        Ok(PlayerSpec {
            kind,
            text: text.to_string(),
        })
    }
}

/// Candidate positions at most: 7 moves x 4 rolls with a move, for either side to move.
const MAX_ROWS: usize = PIECES * 8;

/// One candidate move's rows in the value batch: the next mover's decision states in
/// `first..middle`, the other side's (reached when the next mover passes) in `middle..last`,
/// each side's probability of passing, or the game's result when the move ends it.
#[derive(Clone, Copy, Default)]
struct Span {
    first: usize,
    middle: usize,
    last: usize,
    pass: [f32; 2],
    decided: Option<f32>,
}

impl Span {
    /// The expectation before the next roll (P2-positive). With A and B the two sides'
    /// probability-weighted sums over their rolls with a move, and p and q their chances of
    /// passing: X = A + p Y and Y = B + q X, so X = (A + p B) / (1 - p q).
    fn value(&self, row_weight: &[f32], outputs: &[f32]) -> f32 {
        let weighted = |rows: std::ops::Range<usize>| -> f32 {
            rows.map(|k| row_weight[k] * outputs[k]).sum()
        };
        let (a, b) = (
            weighted(self.first..self.middle),
            weighted(self.middle..self.last),
        );
        let [p, q] = self.pass;
        let denominator = 1.0 - p * q;
        if denominator > 0.0 {
            (a + p * b) / denominator
        } else {
            0.0 // neither side can ever move: no such position is reachable
        }
    }
}

/// A player with its own buffers: choosing a move allocates nothing.
pub struct Player {
    kind: Kind,
    searcher: Searcher,
    scratch: Scratch,
    inputs: Vec<f32>,
    outputs: Vec<f32>,
}

impl Player {
    pub fn new(spec: &PlayerSpec) -> Player {
        Player {
            kind: spec.kind.clone(),
            searcher: Searcher::new(),
            scratch: Scratch::new(MAX_ROWS),
            inputs: vec![0.0; MAX_ROWS * NUM_FEATURES],
            outputs: vec![0.0; MAX_ROWS * PIECES],
        }
    }

    /// The piece to move; `legal` is not empty.
    pub fn choose(
        &mut self,
        pos: &Position,
        player: usize,
        roll: u8,
        legal: MoveMask,
        rng: &mut Rng,
    ) -> usize {
        match &self.kind {
            Kind::Random => random_piece(rng, legal),
            Kind::Greedy => best_by(pos.distinct_moves(player, roll), |piece| {
                let (child, _) = advance(pos, player, roll, Some(piece));
                mover_view(player, evaluate(&child) as f32)
            }),
            Kind::Emm(depth) => self.searcher.analyze(pos, player, roll, *depth).best_piece,
            Kind::Policy(nets) => {
                let nets = Arc::clone(nets);
                let logits = self.policy_logits(&nets, pos, player, roll, legal);
                best_by(legal, |piece| logits[piece])
            }
            Kind::Value(nets) => {
                let nets = Arc::clone(nets);
                self.choose_by_value(&nets, pos, player, roll, 0.0)
            }
            Kind::Guided(nets) => {
                let nets = Arc::clone(nets);
                self.choose_by_value(&nets, pos, player, roll, GUIDE_WEIGHT)
            }
            Kind::Legacy(nets) => {
                let nets = Arc::clone(nets);
                self.choose_legacy(&nets, pos, player, roll, legal)
            }
            Kind::Perfect(table) => perfect_piece(table, pos, player, roll, legal),
        }
    }

    /// One ply of lookahead: the distinct move with the best `value_of_moves`, plus
    /// `prior_weight` times the policy's log-probability of the move (none when 0).
    fn choose_by_value(
        &mut self,
        nets: &Networks,
        pos: &Position,
        player: usize,
        roll: u8,
        prior_weight: f32,
    ) -> usize {
        let values = self.value_of_moves(nets, pos, player, roll);
        let prior = if prior_weight > 0.0 {
            self.policy_log_probs(nets, pos, player, roll)
        } else {
            [0.0; PIECES]
        };
        best_by(pos.distinct_moves(player, roll), |piece| {
            values[piece].unwrap_or(f32::NEG_INFINITY) + prior_weight * prior[piece]
        })
    }

    /// The policy network's 7 logits for the decision state.
    fn policy_logits(
        &mut self,
        nets: &Networks,
        pos: &Position,
        player: usize,
        roll: u8,
        legal: MoveMask,
    ) -> [f32; PIECES] {
        self.inputs[..NUM_FEATURES].copy_from_slice(&features(
            pos,
            player,
            roll,
            legal.count_ones(),
        ));
        nets.policy
            .forward(&self.inputs, 1, &mut self.scratch, &mut self.outputs);
        let mut logits = [0.0; PIECES];
        logits.copy_from_slice(&self.outputs[..PIECES]);
        logits
    }

    /// The policy's log-probabilities over the legal moves (a softmax over their logits only);
    /// 0 for the illegal pieces.
    pub fn policy_log_probs(
        &mut self,
        nets: &Networks,
        pos: &Position,
        player: usize,
        roll: u8,
    ) -> [f32; PIECES] {
        let legal = pos.legal_moves(player, roll);
        let logits = self.policy_logits(nets, pos, player, roll, legal);
        let max = pieces_of(legal)
            .map(|k| logits[k])
            .fold(f32::NEG_INFINITY, f32::max);
        let log_total = pieces_of(legal)
            .map(|k| (logits[k] - max).exp())
            .sum::<f32>()
            .ln();
        let mut log_probs = [0.0; PIECES];
        for k in pieces_of(legal) {
            log_probs[k] = logits[k] - max - log_total;
        }
        log_probs
    }

    /// For each distinct move (None for the others), the value network's expectation over the
    /// next roll (the next decision state), seen from the mover's side: 2 for a win, -2 for a
    /// loss. All candidate positions go through the network as one batch.
    pub fn value_of_moves(
        &mut self,
        nets: &Networks,
        pos: &Position,
        player: usize,
        roll: u8,
    ) -> [Option<f32>; PIECES] {
        let moves = pos.distinct_moves(player, roll);
        // Per piece: its rows in the batch, or the result when the move wins or loses outright.
        let mut spans = [Span::default(); PIECES];
        let mut row_weight = [0.0f32; MAX_ROWS];
        let mut rows = 0;
        for piece in pieces_of(moves) {
            let (child, next) = advance(pos, player, roll, Some(piece));
            if let Some(winner) = child.winner() {
                spans[piece].decided = Some(if winner == player { 2.0 } else { -2.0 });
                continue;
            }
            // Only decision states with a move: the network never saw any other in training.
            // A roll without a move (0 always, others when blocked) passes the turn, so both
            // sides' decision states on this position enter the expectation (`Span::value`).
            let (first, mut middle, mut pass) = (rows, rows, [0.0f32; 2]);
            for (side, who) in [next, 1 - next].into_iter().enumerate() {
                for r in 0..5u8 {
                    let chance = ROLL_WEIGHTS[r as usize] as f32 / ROLL_TOTAL as f32;
                    let legal = child.legal_moves(who, r).count_ones();
                    if r > 0 && legal > 0 {
                        self.add_row(rows, &child, who, r, legal);
                        row_weight[rows] = chance;
                        rows += 1;
                    } else {
                        pass[side] += chance;
                    }
                }
                if side == 0 {
                    middle = rows;
                }
            }
            spans[piece] = Span {
                first,
                middle,
                last: rows,
                pass,
                decided: None,
            };
        }
        nets.value
            .forward(&self.inputs, rows, &mut self.scratch, &mut self.outputs);
        let mut values = [None; PIECES];
        for piece in pieces_of(moves) {
            let span = &spans[piece];
            values[piece] = Some(
                span.decided
                    .unwrap_or_else(|| mover_view(player, span.value(&row_weight, &self.outputs))),
            );
        }
        values
    }

    /// Row `row` of the value batch: the decision state (pos, player to move, roll).
    fn add_row(&mut self, row: usize, pos: &Position, player: usize, roll: u8, legal: u32) {
        let f = features(pos, player, roll, legal);
        self.inputs[row * NUM_FEATURES..(row + 1) * NUM_FEATURES].copy_from_slice(&f);
    }

    /// The old engine's rule: 0.7 * value(after move) + 0.3 * policy + bonuses (finish 5.0,
    /// rosette 2.5, capture 1.5), maximised for both players although the value is
    /// P2-positive (its bug, kept on purpose). The value is read on the position after the
    /// move with the next mover and the same roll.
    fn choose_legacy(
        &mut self,
        nets: &Networks,
        pos: &Position,
        player: usize,
        roll: u8,
        legal: MoveMask,
    ) -> usize {
        let logits = self.policy_logits(nets, pos, player, roll, legal);
        let mut probs = [0.0f32; PIECES];
        let max = logits.iter().cloned().fold(f32::MIN, f32::max);
        let total: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
        for (p, &l) in probs.iter_mut().zip(&logits) {
            *p = (l - max).exp() / total;
        }
        let mut rows = 0;
        for (row, piece) in pieces_of(legal).enumerate() {
            let (child, next) = advance(pos, player, roll, Some(piece));
            let f = features(
                &child,
                next,
                roll,
                child.legal_moves(next, roll).count_ones(),
            );
            self.inputs[row * NUM_FEATURES..(row + 1) * NUM_FEATURES].copy_from_slice(&f);
            rows += 1;
        }
        nets.value
            .forward(&self.inputs, rows, &mut self.scratch, &mut self.outputs);
        let values = &self.outputs;
        let mut row = 0;
        best_by(legal, |piece| {
            let to = pos.track(player, piece) + roll as i8;
            let mut score = 0.7 * values[row] + 0.3 * probs[piece];
            row += 1;
            if to == 14 {
                score += 5.0;
            } else if ROSETTE_TRACK_MASK & (1 << to) != 0 {
                score += 2.5;
            } else if SHARED_MASK & (1 << to) != 0 && pos.occupied(1 - player) & (1 << to) != 0 {
                score += 1.5;
            }
            score
        })
    }
}

/// P2-positive numbers as the mover sees them.
#[inline]
fn mover_view(player: usize, value: f32) -> f32 {
    if player == 1 {
        value
    } else {
        -value
    }
}

/// The piece with the highest score, lowest index on ties; `score` is called once per piece,
/// in increasing piece order.
fn best_by(mask: MoveMask, mut score: impl FnMut(usize) -> f32) -> usize {
    let mut best = (f32::NEG_INFINITY, PIECES);
    for piece in pieces_of(mask) {
        let s = score(piece);
        if best.1 == PIECES || s > best.0 {
            best = (s, piece);
        }
    }
    best.1
}

/// A best move by the table: the first legal piece on the square the best move starts from.
pub fn perfect_piece(
    table: &Solution,
    pos: &Position,
    player: usize,
    roll: u8,
    legal: MoveMask,
) -> usize {
    let best = table.best_move(solver_state(table, pos, player), roll);
    pieces_of(legal)
        .find(|&piece| Some(pos.track(player, piece)) == best.map(|(from, _)| from))
        .unwrap_or_else(|| pieces_of(legal).next().expect("a legal move"))
}
