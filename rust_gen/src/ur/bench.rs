//! `rust_gen ur bench`: samples/s and nodes/s per depth on 1 thread and on every core. The same
//! games are played in both runs (same seed), so the ratio is pure scaling. Games are played
//! by the same generic driver as `generate`.

use super::task::UrGenerator;
use crate::core::cli::{progress_bar, thread_pool};
use crate::core::play_episodes;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// Depths to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [2u32, 3, 4])]
    depths: Vec<u32>,
    /// Games per measurement at each depth (same order as --depths; the last repeats).
    #[arg(long, value_delimiter = ',', default_values_t = [1024u32, 96, 32])]
    games: Vec<u32>,
    /// Repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Write the figures as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

struct Figure {
    samples_per_second: f64,
    nodes_per_second: f64,
    samples: usize,
}

fn measure(task: &UrGenerator, threads: usize, repeats: usize) -> Figure {
    let pool = thread_pool(threads);
    let mut runs: Vec<Figure> = (0..repeats.max(1))
        .map(|_| {
            let what = format!("depth {} x{threads}", task.depth);
            let bar = progress_bar(task.games as u64, &what, "games");
            let started = Instant::now();
            let records = pool.install(|| play_episodes(task, 1, 0, task.games, &bar));
            let seconds = started.elapsed().as_secs_f64();
            bar.finish_and_clear();
            let samples: usize = records.iter().map(|r| r.samples.len()).sum();
            let nodes: u64 = records.iter().map(|r| r.nodes).sum();
            Figure {
                samples_per_second: samples as f64 / seconds,
                nodes_per_second: nodes as f64 / seconds,
                samples,
            }
        })
        .collect();
    runs.sort_by(|a, b| a.samples_per_second.total_cmp(&b.samples_per_second));
    runs.swap_remove(runs.len() / 2)
}

pub fn run(args: BenchArgs) -> ExitCode {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut rows = Vec::new();
    println!("| depth | games | samples | 1 thread samples/s | {cores} threads samples/s | per core | scaling | nodes/s ({cores} threads) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (i, &depth) in args.depths.iter().enumerate() {
        let games = *args.games.get(i).or(args.games.last()).unwrap_or(&8);
        let task = UrGenerator {
            games,
            depth,
            exploration: 0.05,
            table: None,
        };
        let one = measure(&task, 1, args.repeats);
        let all = measure(&task, cores, args.repeats);
        let scaling = all.samples_per_second / one.samples_per_second;
        println!(
            "| {depth} | {games} | {} | {:.0} | {:.0} | {:.0} | {scaling:.2}x | {:.3e} |",
            one.samples,
            one.samples_per_second,
            all.samples_per_second,
            all.samples_per_second / cores as f64,
            all.nodes_per_second
        );
        rows.push(json!({
            "depth": depth, "games": games, "samples": one.samples,
            "samples_per_second_1_thread": one.samples_per_second,
            "samples_per_second_all_cores": all.samples_per_second,
            "samples_per_second_per_core": all.samples_per_second / cores as f64,
            "scaling": scaling,
            "nodes_per_second_1_thread": one.nodes_per_second,
            "nodes_per_second_all_cores": all.nodes_per_second,
        }));
    }
    let report =
        json!({"cores": cores, "repeats": args.repeats, "statistic": "median", "results": rows});
    if let Some(path) = args.out {
        if let Err(e) = std::fs::write(&path, serde_json::to_string_pretty(&report).expect("json"))
        {
            eprintln!("error: --out '{}': {e}", path.display());
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
