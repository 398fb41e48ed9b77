//! The solved table: the value of every position, what it makes of a move, and how a game
//! position reads in it.

use super::position::{moves, Index, Outcome, Side, State};
use crate::ur::rules::{Position, PIECES, ROLL_TOTAL, ROLL_WEIGHTS};
use rayon::prelude::*;

/// The value of every position, as `Index` numbers them (f64: see `decisions_changed_by_rounding`).
pub struct Solution<V = f64> {
    pub index: Index,
    pub values: Vec<V>,
}

impl<V: Copy + Into<f64>> Solution<V> {
    /// The probability that the player to move wins with perfect play by both sides.
    pub fn value(&self, s: State) -> f64 {
        self.values[self.index.of(s) as usize].into()
    }

    /// The value of a move's outcome for the player who made it.
    pub fn outcome_value(&self, outcome: Outcome) -> f64 {
        match outcome {
            Outcome::Won => 1.0,
            Outcome::Again(s) => self.value(s),
            Outcome::Passes(s) => 1.0 - self.value(s),
        }
    }

    /// A best move for roll `roll` (the first of the best, in the order of `moves`), with its
    /// value; None when the player must pass.
    pub fn best_move(&self, s: State, roll: u8) -> Option<(i8, f64)> {
        moves(s, self.index.pieces, roll)
            .map(|(from, outcome)| (from, self.outcome_value(outcome)))
            .fold(None, |best: Option<(i8, f64)>, (from, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((from, v)),
            })
    }

    /// The right-hand side of the equation for V(s), from the current values.
    pub fn backup(&self, s: State) -> f64 {
        let (moved, pass) = self.backup_parts(s);
        moved + pass * (1.0 - self.value(s.swap()))
    }

    /// The equation for V(s) split as V(s) = moved + pass * (1 - V(swap s)): `moved` sums the
    /// rolls with a legal move (their best outcome times the roll's probability), `pass` is the
    /// probability of the rolls that pass.
    pub fn backup_parts(&self, s: State) -> (f64, f64) {
        let (mut moved, mut pass) = (0.0, ROLL_WEIGHTS[0] as f64);
        for roll in 1..=4u8 {
            let weight = ROLL_WEIGHTS[roll as usize] as f64;
            match self.best_move(s, roll) {
                Some((_, v)) => moved += weight * v,
                None => pass += weight,
            }
        }
        (moved / ROLL_TOTAL as f64, pass / ROLL_TOTAL as f64)
    }
}

impl Solution<f64> {
    /// How many decisions (position and roll) a player reading the f32 table would get wrong:
    /// its first best move under the rounded values is worse than the exact best by more than
    /// `slack`. Zero means the table keeps every move choice.
    pub fn decisions_changed_by_rounding(&self, slack: f64) -> u64 {
        let rounded = |s: State| self.values[self.index.of(s) as usize] as f32 as f64;
        let rounded_value = |outcome: Outcome| match outcome {
            Outcome::Won => 1.0,
            Outcome::Again(s) => rounded(s),
            Outcome::Passes(s) => 1.0 - rounded(s),
        };
        let n = self.index.pieces;
        let layers: Vec<(u8, u8)> = (0..n).flat_map(|a| (0..n).map(move |b| (a, b))).collect();
        layers
            .par_iter()
            .map(|&(a, b)| {
                let mut wrong = 0u64;
                for s in self.index.states(a, b) {
                    for roll in 1..=4u8 {
                        let Some((_, best)) = self.best_move(s, roll) else {
                            continue;
                        };
                        let chosen = moves(s, n, roll)
                            .map(|(_, o)| (rounded_value(o), self.outcome_value(o)))
                            .fold(
                                (f64::NEG_INFINITY, 0.0),
                                |c, x| if x.0 > c.0 { x } else { c },
                            );
                        if chosen.1 < best - slack {
                            wrong += 1;
                        }
                    }
                }
                wrong
            })
            .sum()
    }
}

/// The position as the solver sees it, for a table of n pieces a side: the 7 - n pieces a side
/// that a smaller game lacks count as borne off before the game began.
pub fn solver_state(table: &Solution, pos: &Position, player: usize) -> State {
    let missing = (PIECES - table.index.pieces as usize) as u32;
    let side = |who: usize| Side {
        board: pos.occupied(who),
        off: (pos.finished_count(who) - missing) as u8,
    };
    State {
        me: side(player),
        them: side(1 - player),
    }
}
