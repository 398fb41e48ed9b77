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
//!
//! `position` holds the positions, their moves and their numbering, `solution` the table of
//! values and what it says about moves, `sweep` the solver and `table` the table's file.

mod position;
mod solution;
mod sweep;
mod table;

pub use position::{moves, Index, Outcome, Side, State};
pub use solution::{solver_state, Solution};
pub use sweep::{solve, Report};
pub use table::TABLE_FORMAT;
