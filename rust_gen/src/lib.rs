//! ludus data generator: a game-agnostic core (random streams, the parallel episode driver, shard
//! writing, command-line plumbing, statistics) and one module per task. The binary (`main.rs`)
//! only picks the task.

pub mod core;
pub mod predator;
pub mod ur;
