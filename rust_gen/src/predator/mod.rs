//! The boids predator (contract: docs/predator.md): an exact simulation, the encoding a network
//! sees, the pursuit and planning teachers, episodes, shards, transformer inference, players,
//! matches and traces.

pub mod bench;
pub mod cli;
pub mod encode;
pub mod episode;
pub mod intercept;
pub mod matchplay;
pub mod nn;
pub mod planner;
pub mod players;
pub mod sim;
pub mod task;
