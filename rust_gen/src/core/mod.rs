//! What every task shares and no task owns: the random stream, the safetensors writer, the
//! `Task` trait with the parallel episode driver and the shard writer, the command-line plumbing
//! and the statistics. Nothing here knows a game.

pub mod cli;
pub mod driver;
pub mod rng;
pub mod safetensors;
pub mod stats;

pub use driver::{play_episodes, write_shard, Task};
pub use rng::Rng;

/// The crate version, recorded in every shard's metadata as `rust_gen {VERSION}`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
