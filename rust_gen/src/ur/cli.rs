//! `rust_gen ur ...`: Ur's subcommands. Every flag can also come from the environment variable
//! of the same name in upper case; a flag wins over the variable. Usage errors exit with code 2.

use super::bench::{self, BenchArgs};
use super::matchplay::play_match;
use super::nn::{Networks, Scratch};
use super::players::PlayerSpec;
use super::search::MAX_DEPTH;
use super::task::UrGenerator;
use crate::core::cli::{generate, progress_bar, thread_pool, usage_error, ShardArgs};
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::{BufRead, IsTerminal};
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
    /// Solve the game: the exact win probability of the player to move in every position,
    /// written as a table (docs/ur.md, section 10). Prints one JSON line.
    Solve(SolveArgs),
}

pub fn run(command: UrCommand) -> ExitCode {
    match command {
        UrCommand::Generate(args) => generate_shard(args),
        UrCommand::Bench(args) => bench::run(args),
        UrCommand::Match(args) => play(args),
        UrCommand::Predict(args) => predict(args),
        UrCommand::Solve(args) => solve_game(args),
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
    /// The solved game's table (`rust_gen ur solve`): the teacher plays perfectly and labels
    /// values and move values with exact win probabilities; DEPTH is then unused.
    #[arg(long, env = "TABLE")]
    table: Option<PathBuf>,
    #[command(flatten)]
    shard: ShardArgs,
}

fn generate_shard(args: GenerateArgs) -> ExitCode {
    let table = match args
        .table
        .as_deref()
        .map(super::solve::Solution::load_game)
        .transpose()
    {
        Ok(table) => table,
        Err(e) => return usage_error(format!("--table: {e}")),
    };
    let task = UrGenerator {
        games: args.games,
        depth: args.depth,
        exploration: args.exploration,
        table,
    };
    generate(&task, &args.shard, args.games, "games")
}

#[derive(Args)]
pub struct MatchArgs {
    /// Player A: random, greedy, emm:D, policy:FILE, value:FILE, guided:FILE or legacy:FILE.
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
    /// The solved game's table: the report adds each player's mean loss per decision against
    /// perfect play (win probability given away), and a bare `perfect` player plays from it.
    #[arg(long)]
    table: Option<PathBuf>,
}

fn play(args: MatchArgs) -> ExitCode {
    let table = match args
        .table
        .as_deref()
        .map(super::solve::Solution::load_game)
        .transpose()
    {
        Ok(table) => table.map(std::sync::Arc::new),
        Err(e) => return usage_error(format!("--table: {e}")),
    };
    let parse = |flag: &str, text: &str| {
        PlayerSpec::parse_with_table(text, table.as_ref()).map_err(|e| format!("--{flag}: {e}"))
    };
    let (a, b) = match (parse("a", &args.a), parse("b", &args.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return usage_error(e),
    };
    let report = thread_pool(args.threads)
        .install(|| play_match(&a, &b, args.games, args.seed, table.as_deref()));
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

#[derive(Args)]
pub struct SolveArgs {
    /// Pieces a side: 7 is the game; fewer make small games for tests.
    #[arg(long, env = "PIECES", default_value_t = 7, value_parser = clap::value_parser!(u8).range(1..=7))]
    pieces: u8,
    /// Write the table here (safetensors; written under a temporary name, then renamed).
    #[arg(long, env = "OUT")]
    out: PathBuf,
    /// Stop when a sweep moves no value by more than this.
    #[arg(long, env = "TOLERANCE", default_value_t = 1e-13)]
    tolerance: f64,
    /// Worker threads; 0 means every core.
    #[arg(long, env = "THREADS", default_value_t = 0)]
    threads: usize,
}

fn solve_game(args: SolveArgs) -> ExitCode {
    use super::solve::{solve, Index, State};
    if !(args.tolerance > 0.0 && args.tolerance < 1e-6) {
        return usage_error(format!(
            "--tolerance {}: expected a number in (0, 1e-6)",
            args.tolerance
        ));
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return usage_error(format!("--out: folder '{}' does not exist", dir.display()));
        }
    }
    let started = std::time::Instant::now();
    let pool = thread_pool(args.threads);
    let positions = Index::new(args.pieces).len();
    let bar = progress_bar(positions, "solving", "positions");
    // On a terminal a bar; in a log (Kubernetes, CI) one line per layer pair solved.
    let log = !std::io::stderr().is_terminal();
    let report = |done: u64, sweeps: u32| {
        bar.set_position(done);
        if log {
            eprintln!(
                "solve: {done}/{positions} positions ({:.1}%), {sweeps} sweeps for the last layers, {:.0} s",
                100.0 * done as f64 / positions as f64,
                started.elapsed().as_secs_f64()
            );
        }
    };
    let (solution, wrong) = pool.install(|| {
        let solution = solve(args.pieces, args.tolerance, &report);
        let wrong = solution.decisions_changed_by_rounding(1e-12);
        (solution, wrong)
    });
    bar.finish_and_clear();
    let solve_seconds = started.elapsed().as_secs_f64();
    let bytes = match solution.save(&args.out, Default::default()) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "{}",
        json!({
            "pieces": args.pieces,
            "positions": positions,
            "start_value": solution.value(State::start()),
            "tolerance": args.tolerance,
            "threads": pool.current_num_threads(),
            "seconds": solve_seconds,
            "decisions_changed_by_f32": wrong,
            "bytes": bytes,
            "out": args.out,
        })
    );
    ExitCode::SUCCESS
}
