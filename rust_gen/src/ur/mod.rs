//! The Royal Game of Ur (shared/ur-spec.md).

pub mod eval;
pub mod features;
pub mod game;
pub mod generate;
pub mod rules;
pub mod search;
pub mod shard;
