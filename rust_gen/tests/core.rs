//! The game-agnostic core, with a toy task of the test's own: the driver's determinism across
//! thread counts, the shard layout, and the writer's guards.

use rust_gen::core::cli::thread_pool;
use rust_gen::core::safetensors::{put_f32s, write_atomic, Dtype, Tensor};
use rust_gen::core::{play_episodes, write_shard, Rng, Task};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A task that is not a game: an episode is a random walk of random length, one sample a step.
struct Walk;

impl Task for Walk {
    type Episode = Vec<(u32, f32)>;

    fn name(&self) -> &'static str {
        "walk"
    }

    fn play(&self, index: u32, rng: &mut Rng) -> Self::Episode {
        let steps = 1 + rng.below(20);
        let mut x = 0.0f32;
        (0..steps)
            .map(|_| {
                x += rng.next_f64() as f32 - 0.5;
                (index, x)
            })
            .collect()
    }

    fn rows(episode: &Self::Episode) -> usize {
        episode.len()
    }

    fn tensors<'a>(&self, episodes: &'a [Self::Episode]) -> Vec<Tensor<'a>> {
        let rows = episodes.iter().map(Vec::len).sum();
        let samples = move || episodes.iter().flatten();
        vec![
            Tensor {
                name: "x",
                dtype: Dtype::F32,
                shape: vec![rows],
                write: Box::new(move |out| samples().try_for_each(|s| put_f32s(out, &[s.1]))),
            },
            Tensor {
                name: "episode",
                dtype: Dtype::U32,
                shape: vec![rows],
                write: Box::new(move |out| {
                    samples().try_for_each(|s| out.write_all(&s.0.to_le_bytes()))
                }),
            },
        ]
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        vec![("steps", "1-20".into())]
    }

    fn report(&self, _: &[Self::Episode], _: f64) -> Map<String, Value> {
        Map::new()
    }
}

fn shard_bytes(threads: usize, dir: &std::path::Path) -> Vec<u8> {
    let bar = indicatif::ProgressBar::hidden();
    let episodes = thread_pool(threads).install(|| play_episodes(&Walk, 9, 4, 200, &bar));
    let metadata = BTreeMap::from([("task".to_string(), "walk".to_string())]);
    write_shard(&Walk, dir, 4, &episodes, &metadata).expect("the shard is written");
    std::fs::read(dir.join("shard-00004.safetensors")).expect("the shard exists")
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rust_gen-core-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

#[test]
fn episodes_and_shard_bytes_do_not_depend_on_the_thread_count() {
    let (a, b) = (temp_dir("t1"), temp_dir("t3"));
    let one = shard_bytes(1, &a);
    assert_eq!(one, shard_bytes(3, &b));
    // The layout: header length, JSON header with sorted keys and offsets, then the data.
    let head_len = u64::from_le_bytes(one[..8].try_into().expect("8 bytes")) as usize;
    let head: Value = serde_json::from_slice(&one[8..8 + head_len]).expect("a JSON header");
    let rows = head["x"]["shape"][0].as_u64().expect("rows") as usize;
    assert_eq!(head["x"]["data_offsets"], json!([0, rows * 4]));
    assert_eq!(head["episode"]["data_offsets"], json!([rows * 4, rows * 8]));
    assert_eq!(one.len(), 8 + head_len + rows * 8);
    let first_episode =
        u32::from_le_bytes(one[8 + head_len + rows * 4..][..4].try_into().expect("4"));
    assert_eq!(first_episode, 0, "episodes are laid out in order");
    let _ = std::fs::remove_dir_all(a);
    let _ = std::fs::remove_dir_all(b);
}

#[test]
fn each_episode_has_its_own_stream() {
    let a: Vec<u64> = (0..4)
        .map(|_| Rng::for_episode(1, 0, 0).next_u64())
        .collect();
    assert!(
        a.windows(2).all(|w| w[0] == w[1]),
        "the same (seed, stream, episode) repeats"
    );
    let firsts = [
        Rng::for_episode(1, 0, 0).next_u64(),
        Rng::for_episode(1, 0, 1).next_u64(),
        Rng::for_episode(1, 1, 0).next_u64(),
        Rng::for_episode(2, 0, 0).next_u64(),
    ];
    for i in 0..firsts.len() {
        for j in i + 1..firsts.len() {
            assert_ne!(firsts[i], firsts[j], "streams {i} and {j} coincide");
        }
    }
}

#[test]
fn a_tensor_that_writes_the_wrong_size_is_an_error_and_nothing_is_committed() {
    let dir = temp_dir("bad");
    let bad = Tensor {
        name: "short",
        dtype: Dtype::U16,
        shape: vec![3],
        write: Box::new(|out| out.write_all(&[0u8; 4])),
    };
    let (path, tmp) = (dir.join("x.safetensors"), dir.join(".x.tmp"));
    let err = write_atomic(&path, &tmp, &[bad], &BTreeMap::new()).expect_err("6 bytes expected");
    assert!(
        err.to_string()
            .contains("tensor short wrote 4 bytes, its shape says 6"),
        "{err}"
    );
    assert!(!path.exists(), "no file under the final name");
    let _ = std::fs::remove_dir_all(dir);
}
