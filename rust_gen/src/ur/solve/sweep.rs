//! The solver: layer pairs from the most pieces borne off down, each swept to a fixed point
//! over a graph of its moves (see the module above for the method).

use super::position::{moves, Index, Outcome, State};
use super::solution::Solution;
use crate::ur::rules::{ROLL_TOTAL, ROLL_WEIGHTS};
use rayon::prelude::*;

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
