//! `rust_gen predator bench`: simulation steps/s by flock size, generator samples/s per core for
//! each teacher, and network inference per call. Medians of repeated runs; figures as JSON.

use super::encode::Observation;
use super::episode::Protocol;
use super::nn::{random_browser_file, Build, Scratch, Transformer};
use super::planner::PlannerSettings;
use super::sim::flock;
use super::task::{PredatorGenerator, Teacher};
use crate::core::cli::{progress_bar, thread_pool};
use crate::core::{play_episodes, Rng, Task};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// Repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Write the figures as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Measure only network inference (quick, for work on the network code).
    #[arg(long)]
    inference_only: bool,
    /// With --inference-only: only this flock size (10, 50 or 200).
    #[arg(long)]
    boids: Option<usize>,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn steps_per_second(n: u32, repeats: usize) -> f64 {
    let steps = (2_000_000 / (n as usize * n as usize)).clamp(200, 20_000);
    median(
        (0..repeats)
            .map(|_| {
                let mut state = flock(n);
                let mut caught = Vec::new();
                let started = Instant::now();
                for _ in 0..steps {
                    state.step_into((0.0, 0.0), &mut caught);
                }
                steps as f64 / started.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn samples_per_second(teacher: Teacher, episodes: u32, threads: usize, repeats: usize) -> f64 {
    let task = PredatorGenerator {
        episodes,
        teacher,
        steps: 1500,
        max_boids: 50,
        student: None,
    };
    let pool = thread_pool(threads);
    median(
        (0..repeats)
            .map(|_| {
                let bar = progress_bar(episodes as u64, "bench", "episodes");
                let started = Instant::now();
                let played = pool.install(|| play_episodes(&task, 1, 0, episodes, &bar));
                let rows: usize = played.iter().map(PredatorGenerator::rows).sum();
                rows as f64 / started.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn inference_us(build: Build, boids: usize, repeats: usize) -> f64 {
    let mut rng = Rng::new(3);
    let net = Transformer::from_value(&random_browser_file(&mut rng, 48, 4, 3, 96), "random")
        .expect("valid weights");
    let state = flock(boids as u32);
    let obs = Observation::encode(&state);
    let mut scratch = Scratch::default();
    let calls = 2000;
    median(
        (0..repeats)
            .map(|_| {
                let started = Instant::now();
                let mut sink = 0.0f32;
                for _ in 0..calls {
                    sink += net.forward_with(build, &obs, &mut scratch)[0];
                }
                std::hint::black_box(sink);
                started.elapsed().as_secs_f64() * 1e6 / calls as f64
            })
            .collect(),
    )
}

pub fn run(args: BenchArgs) -> ExitCode {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let repeats = args.repeats.max(1);
    if args.inference_only {
        for boids in [10, 50, 200]
            .into_iter()
            .filter(|b| args.boids.is_none_or(|only| only == *b))
        {
            // Every build this processor runs, the one `forward` picks first; the baseline only
            // where it is the one (with software fused multiply-adds it is ~100x slower).
            let best = Build::detect();
            let builds = Build::ALL.iter().filter(|b| b.runs_here());
            for build in builds.filter(|b| **b != Build::Baseline || best == Build::Baseline) {
                let us = inference_us(*build, boids, repeats);
                println!(
                    "inference, 48/4/3/96 network, {boids} boids: {us:.1} us per call (1 thread, {} build)",
                    build.name()
                );
            }
        }
        return ExitCode::SUCCESS;
    }
    let sim: Vec<_> = [10u32, 50, 200]
        .iter()
        .map(|&n| json!({"boids": n, "steps_per_second": steps_per_second(n, repeats)}))
        .collect();
    println!("| boids | simulation steps/s (1 thread) |\n|---|---|");
    for row in &sim {
        println!(
            "| {} | {:.0} |",
            row["boids"],
            row["steps_per_second"].as_f64().unwrap_or(0.0)
        );
    }
    let mut teachers = Vec::new();
    println!("\n| teacher | samples/s, 1 thread | samples/s, {cores} threads | per core |\n|---|---|---|---|");
    for (teacher, episodes) in [
        (Teacher::Pursuit, 64),
        (Teacher::Planner(PlannerSettings::default()), 4),
        // The planner before 2026-12-07, for the speed it gave up for strength.
        (Teacher::Planner(PlannerSettings::legacy()), 4),
    ] {
        let one = samples_per_second(teacher, episodes, 1, repeats);
        let all = samples_per_second(teacher, episodes * cores as u32, cores, repeats);
        println!(
            "| {} | {one:.0} | {all:.0} | {:.0} |",
            teacher.name(),
            all / cores as f64
        );
        teachers.push(json!({"teacher": teacher.name(), "episodes": episodes, "samples_per_second_1_thread": one, "samples_per_second_all_cores": all, "samples_per_second_per_core": all / cores as f64}));
    }
    let build = Build::detect();
    let us = inference_us(build, 50, repeats);
    let build = build.name();
    println!(
        "\ninference, 48/4/3/96 network, 50 boids: {us:.1} us per call (1 thread, {build} build)"
    );
    let protocol = Protocol::Default {
        max_boids: 50,
        steps: 1500,
    };
    let report = json!({"cores": cores, "repeats": repeats, "statistic": "median", "protocol": format!("{protocol:?}"),
        "simulation": sim, "teachers": teachers, "inference_us_per_call_50_boids": us, "inference_build": build});
    if let Some(path) = args.out {
        if let Err(e) = std::fs::write(&path, serde_json::to_string_pretty(&report).expect("json"))
        {
            eprintln!("error: --out '{}': {e}", path.display());
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
