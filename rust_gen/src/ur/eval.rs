//! Static evaluation (docs/ur.md, section 2): integers, positive is good for P2.

use super::rules::{Position, FINISHED, PIECES, ROSETTE_TRACK_MASK};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalParams {
    pub win: i32,
    pub finished_piece: i32,
    pub position_weight: i32,
    pub safety: i32,
    pub rosette_control: i32,
    pub advancement: i32,
    pub on_board: i32,
    pub center_lane: i32,
}

pub const DEFAULT_PARAMS: EvalParams = EvalParams {
    win: 10_000,
    finished_piece: 1000,
    position_weight: 15,
    safety: 25,
    rosette_control: 40,
    advancement: 5,
    on_board: 35,
    center_lane: 2,
};

pub const WIN: i32 = DEFAULT_PARAMS.win;

/// Per-player sums of step 3 of the evaluation: (finished, on board, position, strategy).
fn player_terms(pos: &Position, player: usize, p: &EvalParams) -> (i32, i32, i32, i32) {
    let (mut fin, mut board, mut position, mut strat) = (0, 0, 0, 0);
    for &t in pos.pieces(player) {
        if t == FINISHED {
            fin += 1;
        } else if t >= 0 {
            board += 1;
            position += t as i32 + 1;
            if ROSETTE_TRACK_MASK & (1 << t) != 0 {
                strat += p.safety;
            }
            if (4..=11).contains(&t) {
                strat += p.advancement + p.center_lane;
            }
            if t >= 12 {
                strat += 2 * p.advancement;
            }
        }
    }
    (fin, board, position, strat)
}

pub fn evaluate_with(pos: &Position, p: &EvalParams) -> i32 {
    let (fin1, board1, pos1, strat1) = player_terms(pos, 0, p);
    let (fin2, board2, pos2, strat2) = player_terms(pos, 1, p);
    if fin1 == PIECES as i32 {
        return -p.win;
    }
    if fin2 == PIECES as i32 {
        return p.win;
    }
    let mut score = (fin2 - fin1) * p.finished_piece + (board2 - board1) * p.on_board;
    // Rust's integer division truncates toward zero, as the spec requires.
    score += (pos2 - pos1) * p.position_weight / 10;
    score += strat2 - strat1;
    // A player's rosette track positions (3, 7, 13) are exactly the rosette squares on its
    // track, and a square holds one piece, so counting occupied rosette bits is step 4.
    let rosettes = |player: usize| (pos.occupied(player) & ROSETTE_TRACK_MASK).count_ones() as i32;
    score += (rosettes(1) - rosettes(0)) * p.rosette_control;
    score
}

#[inline]
pub fn evaluate(pos: &Position) -> i32 {
    evaluate_with(pos, &DEFAULT_PARAMS)
}
