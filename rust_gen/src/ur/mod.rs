//! The Royal Game of Ur (shared/ur-spec.md).

pub mod eval;
pub mod features;
pub mod game;
pub mod generate;
pub mod matchplay;
pub mod nn;
pub mod players;
pub mod rules;
pub mod search;
pub mod shard;
