//! `rust_gen ur ...`: Ur's subcommands. Every flag can also come from the environment variable
//! of the same name in upper case; a flag wins over the variable. Usage errors exit with code 2.

use super::bench::{self, BenchArgs};
use super::matchplay::play_match;
use super::nn::{Networks, Scratch};
use super::players::PlayerSpec;
use super::search::MAX_DEPTH;
use super::task::UrGenerator;
use crate::core::cli::{generate, thread_pool, usage_error, ShardArgs};
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum UrCommand {
    /// Play GAMES games with the expectiminimax teacher and write one shard.
    Generate(GenerateArgs),
    /// Measure samples/s and search nodes/s at several depths, on 1 thread and all cores.
    Bench(BenchArgs),
    /// Play two players against each other (seats alternate) and print one JSON report.
    Match(MatchArgs),
    /// Run the networks of a weights file on feature rows: one JSON list of 150 numbers per
    /// stdin line in, one {"value", "policy_logits"} line out. For checking exports.
    Predict(PredictArgs),
}

pub fn run(command: UrCommand) -> ExitCode {
    match command {
        UrCommand::Generate(args) => generate_shard(args),
        UrCommand::Bench(args) => bench::run(args),
        UrCommand::Match(args) => play(args),
        UrCommand::Predict(args) => predict(args),
    }
}

fn parse_exploration(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a probability: expected a number in 0..=1"
        )),
    }
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Games in this shard (at least 1).
    #[arg(long, env = "GAMES", value_parser = clap::value_parser!(u32).range(1..))]
    games: u32,
    /// Teacher search depth in plies.
    #[arg(long, env = "DEPTH", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=MAX_DEPTH as i64))]
    depth: u32,
    /// Probability of playing a uniform random legal move instead of the teacher's.
    #[arg(long, env = "EXPLORATION", default_value = "0.05", value_parser = parse_exploration)]
    exploration: f64,
    #[command(flatten)]
    shard: ShardArgs,
}

fn generate_shard(args: GenerateArgs) -> ExitCode {
    let task = UrGenerator {
        games: args.games,
        depth: args.depth,
        exploration: args.exploration,
    };
    generate(&task, &args.shard, args.games, "games")
}

#[derive(Args)]
pub struct MatchArgs {
    /// Player A: random, greedy, emm:D, policy:FILE, value:FILE or legacy:FILE.
    #[arg(long)]
    a: String,
    /// Player B, same forms as --a.
    #[arg(long)]
    b: String,
    /// Games to play (A is P1 in even games, P2 in odd ones).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    games: u64,
    /// Seed: fixes dice and random choices of every game.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads; 0 means every core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn play(args: MatchArgs) -> ExitCode {
    let parse =
        |flag: &str, text: &str| PlayerSpec::parse(text).map_err(|e| format!("--{flag}: {e}"));
    let (a, b) = match (parse("a", &args.a), parse("b", &args.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return usage_error(e),
    };
    let report = thread_pool(args.threads).install(|| play_match(&a, &b, args.games, args.seed));
    println!(
        "{}",
        serde_json::to_string(&report).expect("a report serialises")
    );
    ExitCode::SUCCESS
}

#[derive(Args)]
pub struct PredictArgs {
    /// Our weights.json or the compatible flat file.
    #[arg(long)]
    weights: PathBuf,
}

fn predict(args: PredictArgs) -> ExitCode {
    let nets = match Networks::load(&args.weights) {
        Ok(nets) => nets,
        Err(e) => return usage_error(format!("--weights: {e}")),
    };
    let mut scratch = Scratch::new(1);
    let (mut value, mut logits) = ([0.0f32; 1], [0.0f32; 7]);
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let row: Vec<f32> = match line
            .map_err(|e| e.to_string())
            .and_then(|l| serde_json::from_str(&l).map_err(|e| e.to_string()))
        {
            Ok(row) => row,
            Err(e) => return usage_error(format!("stdin line {}: {e}", n + 1)),
        };
        if row.len() != 150 {
            return usage_error(format!(
                "stdin line {}: {} numbers, expected 150",
                n + 1,
                row.len()
            ));
        }
        nets.value.forward(&row, 1, &mut scratch, &mut value);
        nets.policy.forward(&row, 1, &mut scratch, &mut logits);
        println!("{}", json!({"value": value[0], "policy_logits": logits}));
    }
    ExitCode::SUCCESS
}
