//! Ur solved (docs/ur.md, section 10): the exact probability that the player to move wins, for
//! every position, under the rules of section 1 with any number of pieces (7 in the real game;
//! 2 and 3 in the tests).
//!
//! A position is seen by the player to move ("me") against the other ("them"); each side is the
//! set of track positions it occupies and how many pieces it has borne off (the rest wait at
//! the start). The value V of a position obeys, with roll r of weight w_r / 16:
//!   V(s) = sum_r w_r / 16 * (max over legal moves m of W(m), or 1 - V(swap s) on a pass)
//!   W(m) = 1 if m bears off my last piece, V(s') if m lands on a rosette (I roll again),
//!          1 - V(swap s') otherwise.
//! Pieces borne off never come back, so positions fall into layers by (my off, their off), and a
//! layer's values depend only on its own, its mirror's and layers with one more piece off.
//! Layers are solved from the most pieces off down, each with its mirror, by Gauss-Seidel
//! sweeps in order of decreasing progress (pips travelled by both sides): every move that
//! captures nothing adds progress, so a sweep already sees this sweep's value of every such
//! successor. A pass leads to the mirror position, of the same progress: the two equations of a
//! position and its mirror are solved together, so only captures wait for the next sweep.
//! Within one progress level the new values are computed in parallel from the old ones and then
//! written, so the result does not depend on the number of threads. Each layer pair's moves are
//! generated once into a graph of table indices (`LayerGraph`); the sweeps only gather values.

use super::rules::{ROLL_TOTAL, ROLL_WEIGHTS, ROSETTE_TRACK_MASK, SHARED_MASK, SHARED_ROSETTE};
use crate::core::safetensors::{tensor_of, write_atomic, Dtype};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Track positions of the squares no opponent can enter, in the order of their index bits.
const PRIVATE: [u8; 6] = [0, 1, 2, 3, 12, 13];
/// The shared squares' track positions (4..11), in the order of their base-3 digits.
const SHARED: [u8; 8] = [4, 5, 6, 7, 8, 9, 10, 11];
const SHARED_CONFIGS: usize = 6561; // 3^8
/// Track position of a piece borne off.
const OFF: u8 = 14;

/// One side: the track positions (0..13) it occupies, as bits, and its pieces borne off.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Side {
    pub board: u16,
    pub off: u8,
}

/// A position seen by the player to move.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct State {
    pub me: Side,
    pub them: Side,
}

impl State {
    pub fn start() -> State {
        let empty = Side { board: 0, off: 0 };
        State {
            me: empty,
            them: empty,
        }
    }

    /// The same position with the other player to move.
    pub fn swap(self) -> State {
        State {
            me: self.them,
            them: self.me,
        }
    }

    /// Pips travelled by both sides: a piece on track position t counts t + 1, one borne off 15.
    fn progress(self) -> u32 {
        let side = |s: Side| {
            (0..14)
                .filter(|t| s.board & (1 << t) != 0)
                .map(|t| t + 1)
                .sum::<u32>()
                + 15 * s.off as u32
        };
        side(self.me) + side(self.them)
    }

    fn pack(self) -> u64 {
        self.me.board as u64
            | (self.me.off as u64) << 14
            | (self.them.board as u64) << 17
            | (self.them.off as u64) << 31
    }

    fn unpack(bits: u64) -> State {
        State {
            me: Side {
                board: (bits & 0x3fff) as u16,
                off: ((bits >> 14) & 7) as u8,
            },
            them: Side {
                board: ((bits >> 17) & 0x3fff) as u16,
                off: ((bits >> 31) & 7) as u8,
            },
        }
    }
}

/// What a move leads to.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Outcome {
    /// The mover bore off its last piece.
    Won,
    /// The mover landed on a rosette and moves again in this position.
    Again(State),
    /// The turn passes: this position, seen by the opponent.
    Passes(State),
}

/// The legal moves of the player to move for roll r (1..4), each named by the track position
/// it starts from (-1: a waiting piece), with its outcome: section 1's rules on sets of squares
/// (the tests check them against the game's own rules, piece by piece).
pub fn moves(s: State, pieces: u8, roll: u8) -> impl Iterator<Item = (i8, Outcome)> {
    let waiting = pieces - s.me.off - s.me.board.count_ones() as u8;
    let sources = (-1i8..14).filter(move |&t| {
        if t < 0 {
            waiting > 0
        } else {
            s.me.board & (1 << t) != 0
        }
    });
    sources.filter_map(move |from| {
        let to = (from + roll as i8) as u8;
        if to > OFF {
            return None;
        }
        let left = if from >= 0 {
            s.me.board & !(1 << from)
        } else {
            s.me.board
        };
        if to == OFF {
            let me = Side {
                board: left,
                off: s.me.off + 1,
            };
            return Some((
                from,
                if me.off == pieces {
                    Outcome::Won
                } else {
                    Outcome::Passes(State {
                        me: s.them,
                        them: me,
                    })
                },
            ));
        }
        let bit = 1u16 << to;
        let theirs_here = SHARED_MASK & bit != 0 && s.them.board & bit != 0;
        if s.me.board & bit != 0 || (theirs_here && to == SHARED_ROSETTE as u8) {
            return None;
        }
        let me = Side {
            board: left | bit,
            off: s.me.off,
        };
        let them = Side {
            board: if theirs_here {
                s.them.board & !bit
            } else {
                s.them.board
            },
            off: s.them.off,
        };
        let next = State { me, them };
        Some((
            from,
            if ROSETTE_TRACK_MASK & bit != 0 {
                Outcome::Again(next)
            } else {
                Outcome::Passes(next.swap())
            },
        ))
    })
}

/// A dense numbering of every position of the game with `pieces` pieces a side in which
/// neither side has borne off all its pieces: layer (my off, their off), then the shared
/// squares as base-3 digits (empty, mine, theirs), then my private squares, then theirs, each a
/// set of 6 ranked by size then value, so that the sets of at most k squares come first.
pub struct Index {
    pub pieces: u8,
    /// First index of each layer (a * pieces + b), and the total at the end.
    layer_start: Vec<u64>,
    /// Offset of each shared configuration within its layer (layer * 6561 + config), and the
    /// number of private sets the opponent may hold there.
    shared_start: Vec<(u64, u64)>,
    /// Per shared configuration: my squares, their squares (bits by track position), counts.
    shared: Vec<(u16, u16, u8, u8)>,
    /// Rank of each 6-bit set of private squares; number of sets of at most k squares.
    rank: [u64; 64],
    at_most: [u64; 7],
}

impl Index {
    pub fn new(pieces: u8) -> Index {
        assert!((1..=7).contains(&pieces), "1 to 7 pieces a side");
        let shared: Vec<(u16, u16, u8, u8)> = (0..SHARED_CONFIGS)
            .map(|mut c| {
                let (mut mine, mut theirs) = (0u16, 0u16);
                for &t in &SHARED {
                    match c % 3 {
                        1 => mine |= 1 << t,
                        2 => theirs |= 1 << t,
                        _ => {}
                    }
                    c /= 3;
                }
                (
                    mine,
                    theirs,
                    mine.count_ones() as u8,
                    theirs.count_ones() as u8,
                )
            })
            .collect();
        let mut sets: Vec<u32> = (0..64).collect();
        sets.sort_by_key(|&m| (m.count_ones(), m));
        let mut rank = [0u64; 64];
        for (r, &m) in sets.iter().enumerate() {
            rank[m as usize] = r as u64;
        }
        let at_most: [u64; 7] = std::array::from_fn(|k| {
            (0..64u32).filter(|m| m.count_ones() as usize <= k).count() as u64
        });
        let mut index = Index {
            pieces,
            layer_start: vec![0],
            shared_start: vec![(0, 0); pieces as usize * pieces as usize * SHARED_CONFIGS],
            shared,
            rank,
            at_most,
        };
        let mut total = 0u64;
        for layer in 0..pieces as usize * pieces as usize {
            let (a, b) = (
                (layer / pieces as usize) as u8,
                (layer % pieces as usize) as u8,
            );
            let mut within = 0u64;
            for c in 0..SHARED_CONFIGS {
                let theirs = index.shared[c].3 as i32;
                let their_sets = index.private_sets(pieces as i32 - b as i32 - theirs);
                index.shared_start[layer * SHARED_CONFIGS + c] = (within, their_sets);
                within += index.count(a, b, c);
            }
            total += within;
            index.layer_start.push(total);
        }
        index
    }

    /// Sets of private squares a side may hold when it has `free` pieces not on shared squares
    /// and not borne off.
    fn private_sets(&self, free: i32) -> u64 {
        if free < 0 {
            0
        } else {
            self.at_most[free.min(6) as usize]
        }
    }

    fn count(&self, a: u8, b: u8, config: usize) -> u64 {
        let (_, _, mine, theirs) = self.shared[config];
        let n = self.pieces as i32;
        self.private_sets(n - a as i32 - mine as i32)
            * self.private_sets(n - b as i32 - theirs as i32)
    }

    pub fn len(&self) -> u64 {
        *self.layer_start.last().expect("at least one layer")
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The positions of layer (a, b), as a range of indices.
    pub fn layer(&self, a: u8, b: u8) -> std::ops::Range<u64> {
        let layer = a as usize * self.pieces as usize + b as usize;
        self.layer_start[layer]..self.layer_start[layer + 1]
    }

    pub fn of(&self, s: State) -> u64 {
        let layer = s.me.off as usize * self.pieces as usize + s.them.off as usize;
        // The shared squares' base-3 number: 1 per square of mine, 2 per square of theirs.
        let shared = |board: u16| SHARED_DIGITS[((board >> 4) & 0xff) as usize];
        let config = (shared(s.me.board) + 2 * shared(s.them.board)) as usize;
        let (start, their_sets) = self.shared_start[layer * SHARED_CONFIGS + config];
        self.layer_start[layer]
            + start
            + self.rank[private_bits(s.me.board)] * their_sets
            + self.rank[private_bits(s.them.board)]
    }

    /// Every position of layer (a, b), in index order.
    pub fn states(&self, a: u8, b: u8) -> impl Iterator<Item = State> + '_ {
        let n = self.pieces as i32;
        let mut by_rank = [0u16; 64];
        for m in 0..64u16 {
            by_rank[self.rank[m as usize] as usize] = board_of_private(m);
        }
        (0..SHARED_CONFIGS).flat_map(move |c| {
            let (mine, theirs, m, t) = self.shared[c];
            let my_sets = self.private_sets(n - a as i32 - m as i32) as usize;
            let their_sets = self.private_sets(n - b as i32 - t as i32) as usize;
            (0..my_sets).flat_map(move |i| {
                (0..their_sets).map(move |j| State {
                    me: Side {
                        board: mine | by_rank[i],
                        off: a,
                    },
                    them: Side {
                        board: theirs | by_rank[j],
                        off: b,
                    },
                })
            })
        })
    }
}

/// The private squares of a board as 6 bits, in the order of `PRIVATE`.
fn private_bits(board: u16) -> usize {
    // PRIVATE is 0, 1, 2, 3, 12, 13.
    (board & 0xf | (board >> 8) & 0x30) as usize
}

/// For each set of shared squares (bit i: track position 4 + i), the sum of 3^i.
const SHARED_DIGITS: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut set = 0;
    while set < 256 {
        let (mut i, mut power) = (0, 1);
        while i < 8 {
            if set & (1 << i) != 0 {
                table[set] += power;
            }
            power *= 3;
            i += 1;
        }
        set += 1;
    }
    table
};

fn board_of_private(bits: u16) -> u16 {
    PRIVATE
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, &t)| 1u16 << t)
        .sum()
}

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

/// Progress of a solve, for a progress bar: called with positions solved so far.
pub trait Report: Sync {
    fn solved(&self, positions: u64, sweeps: u32);
}

impl<F: Fn(u64, u32) + Sync> Report for F {
    fn solved(&self, positions: u64, sweeps: u32) {
        self(positions, sweeps)
    }
}

/// Solves the game with `pieces` pieces a side until no value moves by more than `tolerance`
/// in a sweep. Runs on the current rayon pool.
pub fn solve(pieces: u8, tolerance: f64, report: &dyn Report) -> Solution<f64> {
    let index = Index::new(pieces);
    let mut solution: Solution<f64> = Solution {
        values: vec![0.5; index.len() as usize],
        index,
    };
    let mut done = 0u64;
    for total in (0..=2 * (pieces as u32 - 1)).rev() {
        for a in 0..pieces {
            let b = total as i32 - a as i32;
            if b < a as i32 || b >= pieces as i32 {
                continue;
            }
            let layers: Vec<(u8, u8)> = if a as i32 == b {
                vec![(a, a)]
            } else {
                vec![(a, b as u8), (b as u8, a)]
            };
            let sweeps = solve_layers(&mut solution, &layers, tolerance);
            done += layers
                .iter()
                .map(|&(a, b)| solution.index.layer(a, b).end - solution.index.layer(a, b).start)
                .sum::<u64>();
            report.solved(done, sweeps);
        }
    }
    solution
}

/// A move's outcome in a layer pair's move graph: the index of the position it leads to, with
/// what that position's value means for the mover in the top bits.
const AGAIN: u32 = 1 << 31; // V(s'): the mover rolls again
const WON: u32 = 1 << 30; // 1: the mover bore off its last piece (no index)
const TARGET: u32 = WON - 1; // otherwise 1 - V(s'): the turn passes

/// A layer and its mirror, in sweep order (by decreasing progress), with every decision's
/// outcomes as indices into the value table: built once, so that each of the many sweeps only
/// gathers values instead of generating moves and numbering positions again.
struct LayerGraph {
    /// Where each level of equal progress starts, and the end.
    levels: Vec<usize>,
    /// Each position's index in the table.
    at: Vec<u32>,
    /// The position (in sweep order) of each position's mirror, in the same level.
    mirror: Vec<u32>,
    /// Each position's moves per roll 1..4 (a count each, a byte each), and where its moves
    /// start in `outcomes`.
    counts: Vec<[u8; 4]>,
    start: Vec<u64>,
    outcomes: Vec<u32>,
}

impl LayerGraph {
    fn new(index: &Index, layers: &[(u8, u8)]) -> LayerGraph {
        let mut by_progress: Vec<(u32, u64)> = layers
            .iter()
            .flat_map(|&(a, b)| index.states(a, b))
            .map(|s| (s.progress(), s.pack()))
            .collect();
        // Within a level by packed bits, so that each position finds its mirror by search.
        by_progress.par_sort_unstable_by_key(|&(p, bits)| (std::cmp::Reverse(p), bits));
        let mut levels = vec![0];
        levels.extend(
            by_progress
                .chunk_by(|x, y| x.0 == y.0)
                .scan(0, |end, level| {
                    *end += level.len();
                    Some(*end)
                }),
        );
        let encode = |outcome: Outcome| {
            let target = |s: State| {
                let at = index.of(s);
                debug_assert!(at <= TARGET as u64);
                at as u32
            };
            match outcome {
                Outcome::Won => WON,
                Outcome::Again(s) => AGAIN | target(s),
                Outcome::Passes(s) => target(s),
            }
        };
        // Two passes over the moves, so that nothing is held per position but the graph: the
        // counts first, then the outcomes into their place.
        let heads: Vec<(u32, u32, [u8; 4])> = levels
            .par_windows(2)
            .flat_map_iter(|w| {
                let level = &by_progress[w[0]..w[1]];
                level.iter().map(move |&(p, bits)| {
                    let s = State::unpack(bits);
                    let mirror = level
                        .binary_search(&(p, s.swap().pack()))
                        .expect("a mirror in the level");
                    let counts =
                        std::array::from_fn(|r| moves(s, index.pieces, r as u8 + 1).count() as u8);
                    (index.of(s) as u32, (w[0] + mirror) as u32, counts)
                })
            })
            .collect();
        let mut start = Vec::with_capacity(heads.len() + 1);
        start.push(0u64);
        for (_, _, counts) in &heads {
            let n: u64 = counts.iter().map(|&c| c as u64).sum();
            start.push(start.last().expect("a start") + n);
        }
        let mut outcomes = vec![0u32; *start.last().expect("a start") as usize];
        let mut slices = Vec::with_capacity(levels.len());
        let mut rest = outcomes.as_mut_slice();
        for w in levels.windows(2) {
            let (here, after) = rest.split_at_mut((start[w[1]] - start[w[0]]) as usize);
            slices.push((w[0]..w[1], here));
            rest = after;
        }
        slices.into_par_iter().for_each(|(range, out)| {
            let mut at = 0;
            for &(_, bits) in &by_progress[range] {
                let s = State::unpack(bits);
                for roll in 1..=4u8 {
                    for (_, o) in moves(s, index.pieces, roll) {
                        out[at] = encode(o);
                        at += 1;
                    }
                }
            }
        });
        drop(by_progress);
        let (at, mirror, counts) = heads.into_iter().fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |(mut at, mut mirror, mut counts), (a, m, c)| {
                at.push(a);
                mirror.push(m);
                counts.push(c);
                (at, mirror, counts)
            },
        );
        LayerGraph {
            levels,
            at,
            mirror,
            counts,
            start,
            outcomes,
        }
    }

    /// `Solution::backup_parts` for the position at `k` in sweep order, from the graph.
    fn backup_parts(&self, values: &[f64], k: usize) -> (f64, f64) {
        let (mut moved, mut pass) = (0.0, ROLL_WEIGHTS[0] as f64);
        let mut next = self.start[k] as usize;
        for (roll, &count) in self.counts[k].iter().enumerate() {
            let weight = ROLL_WEIGHTS[roll + 1] as f64;
            if count == 0 {
                pass += weight;
                continue;
            }
            let best = self.outcomes[next..next + count as usize]
                .iter()
                .map(|&o| {
                    if o == WON {
                        1.0
                    } else if o & AGAIN != 0 {
                        values[(o & TARGET) as usize]
                    } else {
                        1.0 - values[o as usize]
                    }
                })
                .fold(f64::NEG_INFINITY, f64::max);
            moved += weight * best;
            next += count as usize;
        }
        (moved / ROLL_TOTAL as f64, pass / ROLL_TOTAL as f64)
    }
}

/// Sweeps the positions of `layers` (a layer and its mirror) to a fixed point; returns the
/// number of sweeps.
fn solve_layers(solution: &mut Solution<f64>, layers: &[(u8, u8)], tolerance: f64) -> u32 {
    let graph = LayerGraph::new(&solution.index, layers);
    let mut sweeps = 0;
    loop {
        sweeps += 1;
        let mut largest_change = 0f64;
        for level in graph.levels.windows(2) {
            let values = &solution.values;
            let parts: Vec<(f64, f64)> = (level[0]..level[1])
                .into_par_iter()
                .map(|k| graph.backup_parts(values, k))
                .collect();
            for (i, k) in (level[0]..level[1]).enumerate() {
                // A pass leads to the mirror, in this level: solve the pair's two equations
                // together rather than wait a sweep for each other's value.
                let (moved, pass) = parts[i];
                let j = graph.mirror[k] as usize;
                let value = if j == k {
                    (moved + pass) / (1.0 + pass)
                } else {
                    let (their_moved, their_pass) = parts[j - level[0]];
                    (moved + pass * (1.0 - their_moved - their_pass)) / (1.0 - pass * their_pass)
                };
                let at = graph.at[k] as usize;
                largest_change = largest_change.max((value - solution.values[at]).abs());
                solution.values[at] = value;
            }
        }
        if largest_change <= tolerance {
            return sweeps;
        }
    }
}

/// The table file's format name, in its metadata.
pub const TABLE_FORMAT: &str = "ludus.ur-solution/1";

impl Solution<f64> {
    /// Writes the values as f64 in a safetensors file (one tensor, `values`, in index order),
    /// under a temporary name first; `metadata` joins the format, piece count and start value.
    pub fn save(&self, path: &Path, mut metadata: BTreeMap<String, String>) -> Result<u64, String> {
        metadata.insert("format".into(), TABLE_FORMAT.into());
        metadata.insert("pieces".into(), self.index.pieces.to_string());
        metadata.insert("positions".into(), self.index.len().to_string());
        metadata.insert(
            "start_value".into(),
            format!("{:.15}", self.value(State::start())),
        );
        let values = tensor_of(
            "values",
            Dtype::F64,
            vec![self.values.len()],
            &self.values,
            |v, out| out.write_all(&v.to_le_bytes()),
        );
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        write_atomic(path, &tmp, &[values], &metadata).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: {e}", path.display())
        })
    }
}

impl Solution<f64> {
    /// Reads the table of the real game (7 pieces a side), for players and the teacher: a table
    /// of a smaller game is refused.
    pub fn load_game(path: &Path) -> Result<Solution<f64>, String> {
        let table = Solution::load(path)?;
        if table.index.pieces as usize != super::rules::PIECES {
            return Err(format!(
                "{}: the table solves the game with {} pieces a side; the game has {}",
                path.display(),
                table.index.pieces,
                super::rules::PIECES
            ));
        }
        Ok(table)
    }

    /// Reads a table written by `save`, checking its format, piece count and length.
    pub fn load(path: &Path) -> Result<Solution<f64>, String> {
        let name = path.display();
        let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
        let bad = |what: &str| format!("{name}: not a ludus Ur solution table ({what})");
        let head_len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
            .ok_or_else(|| bad("shorter than 8 bytes"))?;
        let head: Value = bytes
            .get(8..8usize.saturating_add(head_len))
            .and_then(|h| serde_json::from_slice(h).ok())
            .ok_or_else(|| bad("no JSON header"))?;
        let meta = &head["__metadata__"];
        if meta["format"] != TABLE_FORMAT {
            return Err(bad(&format!(
                "format {} instead of {TABLE_FORMAT}",
                meta["format"]
            )));
        }
        let pieces: u8 = meta["pieces"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .filter(|p| (1..=7).contains(p))
            .ok_or_else(|| bad("metadata 'pieces' is not 1..7"))?;
        let index = Index::new(pieces);
        let n = index.len() as usize;
        let tensor = &head["values"];
        if tensor["dtype"] != "F64" || tensor["shape"] != serde_json::json!([n]) {
            return Err(bad(&format!("tensor 'values' must be F64 of shape [{n}]")));
        }
        let data = bytes
            .get(8 + head_len..)
            .filter(|d| d.len() == 8 * n)
            .ok_or_else(|| bad(&format!("expected {} bytes of values", 8 * n)))?;
        let values = data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        Ok(Solution { index, values })
    }
}
