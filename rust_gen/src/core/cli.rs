//! Command-line plumbing shared by every task: the shard flags, the output folder check, thread
//! pools, progress, usage errors and the generate command itself.

use super::driver::{play_episodes, shard_file_name, write_shard, Task};
use super::VERSION;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The flags every task's `generate` takes besides its episode count and its own settings.
#[derive(Args)]
pub struct ShardArgs {
    /// Seed of the run; with the shard index it fixes every episode.
    #[arg(long, env = "SEED", default_value_t = 0)]
    pub seed: u64,
    /// Index of this shard; names the file and separates its episodes from other shards'.
    #[arg(long, env = "SHARD_INDEX", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..100_000))]
    pub shard_index: u32,
    /// Folder to write the shard into (created if missing).
    #[arg(long, env = "OUT")]
    pub out: PathBuf,
    /// Worker threads; 0 means every core.
    #[arg(long, env = "THREADS", default_value_t = 0)]
    pub threads: usize,
}

/// A usage error found after parsing: one line, exit code 2.
pub fn usage_error(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Checks that OUT can take a file before any episode is played.
pub fn check_out_dir(out: &Path) -> Result<(), String> {
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

/// A bar on a terminal; hidden in logs (Kubernetes, CI), where the result line says it all.
pub fn progress_bar(total: u64, what: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let style = format!("{what} {{bar:30}} {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}");
        bar.set_style(ProgressStyle::with_template(&style).expect("a valid template"));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// `rust_gen <task> generate`: plays `episodes` episodes of `task` on the shard's pool, writes
/// the shard, and prints one JSON line (generic figures plus the task's `report`).
pub fn generate<T: Task>(task: &T, shard: &ShardArgs, episodes: u32, unit: &str) -> ExitCode {
    if let Err(message) = check_out_dir(&shard.out) {
        return usage_error(message);
    }
    let pool = thread_pool(shard.threads);
    let settings: Vec<String> = task
        .metadata()
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    eprintln!(
        "rust_gen {VERSION}: {} shard {} of {episodes} {unit} ({}) on {} threads",
        task.name(),
        shard.shard_index,
        settings.join(", "),
        pool.current_num_threads()
    );
    let started = Instant::now();
    let bar = progress_bar(episodes as u64, "generate", unit);
    let played =
        pool.install(|| play_episodes(task, shard.seed, shard.shard_index, episodes, &bar));
    bar.finish_and_clear();
    let rows: usize = played.iter().map(T::rows).sum();
    let mut metadata: BTreeMap<String, String> = task
        .metadata()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    for (key, value) in [
        ("task", task.name().to_string()),
        ("generator", format!("rust_gen {VERSION}")),
        ("seed", shard.seed.to_string()),
        ("shard_index", shard.shard_index.to_string()),
        ("rows", rows.to_string()),
    ] {
        metadata.insert(key.to_string(), value);
    }
    let path = shard.out.join(shard_file_name(shard.shard_index));
    let bytes = match write_shard(task, &shard.out, shard.shard_index, &played, &metadata) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::from(1);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut line = task.report(&played, seconds);
    for (key, value) in [
        ("rows", json!(rows)),
        ("episodes", json!(episodes)),
        ("seconds", json!(seconds)),
        ("samples_per_second", json!(rows as f64 / seconds)),
        ("bytes", json!(bytes)),
        ("threads", json!(pool.current_num_threads())),
        ("path", json!(path)),
        ("metadata", json!(metadata)),
    ] {
        line.insert(key.to_string(), value);
    }
    println!("{}", Value::Object(line));
    ExitCode::SUCCESS
}
