//! `rust_gen`: the command line. Every flag can also come from the environment variable of the
//! same name in upper case; a flag wins over the variable. Usage errors exit with code 2.

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rust_gen::ur::game::GameRecord;
use rust_gen::ur::generate::{generate_games, GenerateConfig};
use rust_gen::ur::matchplay::play_match;
use rust_gen::ur::players::PlayerSpec;
use rust_gen::ur::search::MAX_DEPTH;
use rust_gen::ur::shard::{shard_file_name, write_shard, BYTES_PER_SAMPLE};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

mod bench;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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
}

#[derive(Subcommand)]
enum UrCommand {
    /// Play GAMES games with the expectiminimax teacher and write one shard.
    Generate(GenerateArgs),
    /// Measure samples/s and search nodes/s at several depths, on 1 thread and all cores.
    Bench(bench::BenchArgs),
    /// Play two players against each other (seats alternate) and print one JSON report.
    Match(MatchArgs),
    /// Run the networks of a weights file on feature rows: one JSON list of 150 numbers per
    /// stdin line in, one {"value", "policy_logits"} line out. For checking exports.
    Predict(PredictArgs),
}

#[derive(Args)]
struct PredictArgs {
    /// Our weights.json or the compatible flat file.
    #[arg(long)]
    weights: PathBuf,
}

fn predict(args: PredictArgs) -> ExitCode {
    use rust_gen::ur::nn::{Networks, Scratch};
    use std::io::BufRead;
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
struct MatchArgs {
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

fn parse_exploration(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a probability: expected a number in 0..=1"
        )),
    }
}

#[derive(Args)]
struct GenerateArgs {
    /// Games in this shard (at least 1).
    #[arg(long, env = "GAMES", value_parser = clap::value_parser!(u32).range(1..))]
    games: u32,
    /// Teacher search depth in plies.
    #[arg(long, env = "DEPTH", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=MAX_DEPTH as i64))]
    depth: u32,
    /// Seed of the run; with the shard index it fixes every game.
    #[arg(long, env = "SEED", default_value_t = 0)]
    seed: u64,
    /// Index of this shard; names the file and separates its games from other shards'.
    #[arg(long, env = "SHARD_INDEX", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..100_000))]
    shard_index: u32,
    /// Folder to write the shard into (created if missing).
    #[arg(long, env = "OUT")]
    out: PathBuf,
    /// Worker threads; 0 means every core.
    #[arg(long, env = "THREADS", default_value_t = 0)]
    threads: usize,
    /// Probability of playing a uniform random legal move instead of the teacher's.
    #[arg(long, env = "EXPLORATION", default_value = "0.05", value_parser = parse_exploration)]
    exploration: f64,
}

/// A usage error found after parsing: one line, exit code 2.
fn usage_error(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Checks that OUT can take a file before any game is played.
fn check_out_dir(out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| {
        format!(
            "--out/OUT '{}': cannot create the folder: {e}",
            out.display()
        )
    })?;
    let probe = out.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        format!(
            "--out/OUT '{}': cannot write into the folder: {e}",
            out.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

pub fn thread_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool starts")
}

/// A bar on a terminal; in logs (Kubernetes, CI), a line every 10%.
pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let style = format!("{what} {{bar:30}} {{pos}}/{{len}} games  {{per_sec}}  eta {{eta}}");
        bar.set_style(ProgressStyle::with_template(&style).expect("a valid template"));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

fn generate(args: GenerateArgs) -> ExitCode {
    if let Err(message) = check_out_dir(&args.out) {
        return usage_error(message);
    }
    let pool = thread_pool(args.threads);
    let cfg = GenerateConfig {
        seed: args.seed,
        shard_index: args.shard_index,
        games: args.games,
        depth: args.depth,
        exploration: args.exploration,
    };
    eprintln!(
        "rust_gen {VERSION}: shard {} of {} games at depth {} on {} threads",
        cfg.shard_index,
        cfg.games,
        cfg.depth,
        pool.current_num_threads()
    );
    let started = Instant::now();
    let bar = progress_bar(cfg.games as u64, "generate");
    let records: Vec<GameRecord> = pool.install(|| generate_games(&cfg, &bar));
    bar.finish_and_clear();
    let samples: Vec<_> = records
        .iter()
        .flat_map(|r| r.samples.iter().cloned())
        .collect();
    let unfinished = records.iter().filter(|r| r.winner.is_none()).count();
    let p2_wins = records.iter().filter(|r| r.winner == Some(1)).count();
    let nodes: u64 = records.iter().map(|r| r.nodes).sum();
    drop(records);
    let metadata: BTreeMap<String, String> = [
        ("task", "ur".to_string()),
        ("generator", format!("rust_gen {VERSION}")),
        ("seed", cfg.seed.to_string()),
        ("shard_index", cfg.shard_index.to_string()),
        ("depth", cfg.depth.to_string()),
        ("exploration", cfg.exploration.to_string()),
        ("games", cfg.games.to_string()),
        ("rows", samples.len().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let bytes = match write_shard(&args.out, cfg.shard_index, &samples, &metadata) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!(
                "error: writing {}: {e}",
                args.out.join(shard_file_name(cfg.shard_index)).display()
            );
            return ExitCode::from(1);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let line = json!({
        "rows": samples.len(),
        "games": cfg.games,
        "unfinished": unfinished,
        "p2_wins": p2_wins,
        "seconds": seconds,
        "samples_per_second": samples.len() as f64 / seconds,
        "nodes": nodes,
        "nodes_per_second": nodes as f64 / seconds,
        "bytes": bytes,
        "bytes_per_sample": BYTES_PER_SAMPLE,
        "threads": pool.current_num_threads(),
        "path": args.out.join(shard_file_name(cfg.shard_index)),
        "metadata": metadata,
    });
    println!("{line}");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.task {
        Task::Ur(UrCommand::Generate(args)) => generate(args),
        Task::Ur(UrCommand::Bench(args)) => bench::run(args),
        Task::Ur(UrCommand::Match(args)) => play(args),
        Task::Ur(UrCommand::Predict(args)) => predict(args),
    }
}
