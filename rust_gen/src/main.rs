//! `rust_gen`: the command line, and the only place that dispatches on the task. Each task's
//! subcommands live in its own module (`ur::cli`); what they share is in `core::cli`.

use clap::{Parser, Subcommand};
use rust_gen::predator::cli::PredatorCommand;
use rust_gen::ur::cli::UrCommand;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rust_gen",
    version,
    about = "ludus data generator, teacher and match player"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// The Royal Game of Ur.
    #[command(subcommand)]
    Ur(UrCommand),
    /// The boids predator.
    #[command(subcommand)]
    Predator(PredatorCommand),
}

fn main() -> ExitCode {
    match Cli::parse().task {
        Task::Ur(command) => rust_gen::ur::cli::run(command),
        Task::Predator(command) => rust_gen::predator::cli::run(command),
    }
}
