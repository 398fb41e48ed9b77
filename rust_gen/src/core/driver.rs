//! The one thing every task does: play episodes in parallel, each with its own random stream,
//! and write their samples as one shard.

use super::rng::Rng;
use super::safetensors::{write_atomic, Tensor};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// What a task tells the generator. Implementations hold their own settings (search depth,
/// teacher, ...); the driver and the command line are generic over this trait, so the hot loop
/// of each task is compiled for that task (static dispatch).
pub trait Task: Sync {
    /// One played episode: its samples plus whatever the task reports about it.
    type Episode: Send;

    /// The task's name, as in `TASK` and the shard metadata.
    fn name(&self) -> &'static str;

    /// Plays episode `index` using only `rng` for randomness.
    fn play(&self, index: u32, rng: &mut Rng) -> Self::Episode;

    /// Training samples (shard rows) in one episode.
    fn rows(episode: &Self::Episode) -> usize;

    /// The shard's tensors: every episode's samples, in episode order, written by the
    /// tensors' writers straight into the file.
    fn tensors<'a>(&self, episodes: &'a [Self::Episode]) -> Vec<Tensor<'a>>;

    /// The task's settings as shard metadata; the generator adds task, version, seed, shard and
    /// rows.
    fn metadata(&self) -> Vec<(&'static str, String)>;

    /// Task figures for the JSON result line (unfinished games, search nodes, ...).
    fn report(&self, episodes: &[Self::Episode], seconds: f64) -> Map<String, Value>;
}

/// Plays episodes 0..count of a shard on the current rayon pool. Each episode's stream derives
/// from (seed, shard, episode) and rayon's indexed collect keeps episode order, so the result
/// does not depend on the number of threads.
pub fn play_episodes<T: Task>(
    task: &T,
    seed: u64,
    shard: u32,
    count: u32,
    progress: &ProgressBar,
) -> Vec<T::Episode> {
    (0..count)
        .into_par_iter()
        .map(|index| {
            let mut rng = Rng::for_episode(seed, shard as u64, index as u64);
            let episode = task.play(index, &mut rng);
            progress.inc(1);
            episode
        })
        .collect()
}

pub fn shard_file_name(shard_index: u32) -> String {
    format!("shard-{shard_index:05}.safetensors")
}

/// Writes the shard atomically into `dir` (temporary name, sync, rename); returns the file size.
pub fn write_shard<T: Task>(
    task: &T,
    dir: &Path,
    shard_index: u32,
    episodes: &[T::Episode],
    metadata: &BTreeMap<String, String>,
) -> std::io::Result<u64> {
    let name = shard_file_name(shard_index);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = write_atomic(&dir.join(&name), &tmp, &task.tensors(episodes), metadata);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
