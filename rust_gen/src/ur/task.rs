//! Ur as a generator task: one episode is one game played by the teacher.

use super::game::{play_game, GameRecord};
use super::shard::{tensors, BYTES_PER_SAMPLE};
use super::solve::Solution;
use crate::core::safetensors::Tensor;
use crate::core::{Rng, Task};
use serde_json::{json, Map, Value};

/// The settings of one Ur shard's games.
pub struct UrGenerator {
    pub games: u32,
    pub depth: u32,
    pub exploration: f64,
    /// The solved game: the teacher plays perfectly instead of searching to `depth`.
    pub table: Option<Solution>,
}

impl Task for UrGenerator {
    type Episode = GameRecord;

    fn name(&self) -> &'static str {
        "ur"
    }

    fn play(&self, index: u32, rng: &mut Rng) -> GameRecord {
        play_game(
            index,
            rng,
            self.depth,
            self.exploration,
            self.table.as_ref(),
        )
    }

    fn rows(episode: &GameRecord) -> usize {
        episode.samples.len()
    }

    fn tensors<'a>(&self, episodes: &'a [GameRecord]) -> Vec<Tensor<'a>> {
        tensors(episodes)
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        vec![
            ("depth", self.depth.to_string()),
            (
                "teacher",
                if self.table.is_some() {
                    "perfect"
                } else {
                    "emm"
                }
                .to_string(),
            ),
            ("exploration", self.exploration.to_string()),
            ("games", self.games.to_string()),
        ]
    }

    fn report(&self, episodes: &[GameRecord], seconds: f64) -> Map<String, Value> {
        let nodes: u64 = episodes.iter().map(|r| r.nodes).sum();
        let count = |winner: Option<usize>| episodes.iter().filter(|r| r.winner == winner).count();
        let mut out = Map::new();
        out.insert("games".into(), json!(self.games));
        out.insert("unfinished".into(), json!(count(None)));
        out.insert("p2_wins".into(), json!(count(Some(1))));
        out.insert("nodes".into(), json!(nodes));
        out.insert("nodes_per_second".into(), json!(nodes as f64 / seconds));
        out.insert("bytes_per_sample".into(), json!(BYTES_PER_SAMPLE));
        out
    }
}
