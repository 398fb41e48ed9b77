//! The Royal Game of Ur (contract: docs/ur.md): rules, static evaluation, the exact
//! expectiminimax teacher, features, the generator task, networks, players and matches.

pub mod bench;
pub mod cli;
pub mod dice;
pub mod eval;
pub mod features;
pub mod game;
pub mod matchplay;
pub mod nn;
pub mod players;
pub mod rules;
pub mod search;
pub mod shard;
pub mod solve;
pub mod task;
