//! The teacher: exact depth-d expectiminimax (docs/ur.md, section 3).
//!
//! Values are integers scaled by `SCALE` = 16^MAX_DEPTH. A chance node averages with weights
//! 1,4,6,4,1 over 16, and a path crosses at most MAX_DEPTH averaging chance nodes, so every value
//! is an exact integer in this scale: no rounding, and pruning decisions are exact comparisons.
//!
//! Pruning keeps the value exact: fail-soft alpha-beta at decision nodes and Star1 at chance
//! nodes (bounds -WIN..WIN on every value). The contract of `chance`/`decision` with window
//! (alpha, beta): a result r <= alpha is an upper bound of the true value, r >= beta a lower
//! bound, anything in between is the true value. A call with a window wider than the value range
//! therefore returns the exact value.

use super::eval::{evaluate, WIN};
use super::rules::{pieces_of, MoveMask, Position, PIECES, ROLL_TOTAL, ROLL_WEIGHTS};

pub const MAX_DEPTH: u32 = 6;
pub const SCALE: i64 = 1 << (4 * MAX_DEPTH);
pub const LOWER: i64 = -(WIN as i64) * SCALE;
pub const UPPER: i64 = (WIN as i64) * SCALE;
/// A window that no value can leave: searching with it gives exact values.
pub const FULL_WINDOW: (i64, i64) = (LOWER - 1, UPPER + 1);

#[inline]
fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

#[inline]
fn ceil_div(a: i64, b: i64) -> i64 {
    -(-a).div_euclid(b)
}

/// Converts a scaled search value to the sample scale (value / win, clamped to [-1, 1]).
#[inline]
pub fn to_unit(value: i64) -> f32 {
    ((value as f64) / (UPPER as f64)).clamp(-1.0, 1.0) as f32
}

/// What the teacher says about one decision (a mover with a known roll).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Analysis {
    /// Exact value of the decision node (scaled).
    pub value: i64,
    /// The teacher's move: best for the mover, lowest piece index on ties.
    pub best_piece: usize,
    pub legal: MoveMask,
    /// Exact value of each legal move (scaled); 0 where illegal.
    pub move_values: [i64; PIECES],
}

#[derive(Default)]
pub struct Searcher {
    /// Nodes visited (chance and decision), for the benchmark.
    pub nodes: u64,
}

impl Searcher {
    pub fn new() -> Self {
        Searcher::default()
    }

    /// Value of `player` being about to roll in `pos` with `depth` plies left.
    pub fn chance(
        &mut self,
        pos: &Position,
        player: usize,
        depth: u32,
        alpha: i64,
        beta: i64,
    ) -> i64 {
        self.nodes += 1;
        if depth == 0 || pos.winner().is_some() {
            return evaluate(pos) as i64 * SCALE;
        }
        // Star1: 16 * node = sum + w * v + (rest), rest in [LOWER, UPPER] * remaining weight.
        let mut sum = 0i64;
        let mut remaining = ROLL_TOTAL;
        for (roll, &w) in ROLL_WEIGHTS.iter().enumerate() {
            remaining -= w;
            let child_alpha =
                floor_div(ROLL_TOTAL * alpha - sum - UPPER * remaining, w).max(FULL_WINDOW.0);
            let child_beta =
                ceil_div(ROLL_TOTAL * beta - sum - LOWER * remaining, w).min(FULL_WINDOW.1);
            let v = self.decision(pos, player, roll as u8, depth, child_alpha, child_beta);
            if v <= child_alpha {
                return ceil_div(sum + w * v + UPPER * remaining, ROLL_TOTAL);
            }
            if v >= child_beta {
                return floor_div(sum + w * v + LOWER * remaining, ROLL_TOTAL);
            }
            sum += w * v;
        }
        debug_assert_eq!(sum % ROLL_TOTAL, 0);
        sum / ROLL_TOTAL
    }

    /// Value of `player` to move with `roll` in `pos`, `depth` >= 1 plies left.
    pub fn decision(
        &mut self,
        pos: &Position,
        player: usize,
        roll: u8,
        depth: u32,
        alpha: i64,
        beta: i64,
    ) -> i64 {
        self.nodes += 1;
        let moves = pos.distinct_moves(player, roll);
        if moves == 0 {
            return self.chance(pos, 1 - player, depth - 1, alpha, beta);
        }
        let maximizing = player == 1;
        let (mut alpha, mut beta) = (alpha, beta);
        let mut best = if maximizing {
            FULL_WINDOW.0
        } else {
            FULL_WINDOW.1
        };
        for piece in ordered(pos, player, roll, moves) {
            let (child, again) = pos.apply(player, piece, roll);
            let next = if again { player } else { 1 - player };
            let v = self.chance(&child, next, depth - 1, alpha, beta);
            if maximizing {
                best = best.max(v);
                alpha = alpha.max(v);
            } else {
                best = best.min(v);
                beta = beta.min(v);
            }
            if alpha >= beta {
                break;
            }
        }
        best
    }

    /// The exact value of every legal move and the teacher's choice. `depth` >= 1.
    pub fn analyze(&mut self, pos: &Position, player: usize, roll: u8, depth: u32) -> Analysis {
        assert!(depth >= 1, "analyze needs depth >= 1");
        let legal = pos.legal_moves(player, roll);
        assert!(legal != 0, "analyze needs a legal move");
        let mut move_values = [0i64; PIECES];
        let mut best_piece = PIECES;
        for piece in pieces_of(legal) {
            // A piece on the same track position as a lower one has its value already.
            let twin = (0..piece).find(|&j| {
                legal & (1 << j) != 0 && pos.track(player, j) == pos.track(player, piece)
            });
            move_values[piece] = match twin {
                Some(j) => move_values[j],
                None => {
                    let (child, again) = pos.apply(player, piece, roll);
                    let next = if again { player } else { 1 - player };
                    self.chance(&child, next, depth - 1, FULL_WINDOW.0, FULL_WINDOW.1)
                }
            };
            let better = |a: i64, b: i64| if player == 1 { a > b } else { a < b };
            if best_piece == PIECES || better(move_values[piece], move_values[best_piece]) {
                best_piece = piece;
            }
        }
        Analysis {
            value: move_values[best_piece],
            best_piece,
            legal,
            move_values,
        }
    }
}

/// Moves in a good order for pruning: captures, bear-offs and rosettes first, then the most
/// advanced piece. Order changes speed only, never values.
#[inline]
fn ordered(
    pos: &Position,
    player: usize,
    roll: u8,
    moves: MoveMask,
) -> impl Iterator<Item = usize> {
    let mut list = [(0i32, 0usize); PIECES];
    let mut n = 0;
    for piece in pieces_of(moves) {
        let to = pos.track(player, piece) + roll as i8;
        let mut score = to as i32;
        if to == 14 {
            score += 100;
        } else if super::rules::ROSETTE_TRACK_MASK & (1 << to) != 0 {
            score += 80;
        } else if (4..=11).contains(&to) && pos.occupied(1 - player) & (1 << to) != 0 {
            score += 120;
        }
        list[n] = (-score, piece);
        n += 1;
    }
    list[..n].sort_unstable();
    (0..n).map(move |i| list[i].1)
}
