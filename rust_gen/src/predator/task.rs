//! The predator as a generator task: one episode of the default protocol driven by a teacher,
//! one sample per step (docs/predator.md, section 4).

use super::encode::Observation;
use super::episode::{run, Policy, Protocol};
use super::nn::Transformer;
use super::planner::{planner_settings, Planner, PlannerSettings};
use super::players::{Decoding, NetPlayer, Pursuit};
use super::sim::State;
use crate::core::safetensors::{put_f32s, tensor_of, Dtype, Tensor};
use crate::core::{Rng, Task};
use serde_json::{json, Map, Value};
use std::cell::Cell;
use std::sync::Arc;

/// The teacher that labels every step: `pursuit` or `planner[:KEY=VALUE...]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Teacher {
    /// Closest pursuit (the old system's teacher).
    Pursuit,
    /// The planning teacher, with its settings (the defaults unless the text changes some).
    Planner(PlannerSettings),
}

impl Teacher {
    /// `pursuit`, `planner` or `planner:replan=1:follow=0` (the keys of the `planner` player).
    pub fn parse(text: &str) -> Result<Teacher, String> {
        if text == "pursuit" {
            return Ok(Teacher::Pursuit);
        }
        planner_settings(text)
            .map(Teacher::Planner)
            .map_err(|e| format!("{e} (a teacher is pursuit or planner[:KEY=VALUE...])"))
    }

    /// The text `parse` reads back, as shards record it.
    pub fn name(&self) -> String {
        match self {
            Teacher::Pursuit => "pursuit".to_string(),
            Teacher::Planner(settings) => settings.to_string(),
        }
    }

    fn build(&self) -> Box<dyn Policy> {
        match self {
            Teacher::Pursuit => Box::new(Pursuit),
            Teacher::Planner(settings) => Box::new(Planner::new(*settings)),
        }
    }
}

pub struct PredatorGenerator {
    pub episodes: u32,
    pub teacher: Teacher,
    pub steps: u32,
    pub max_boids: u32,
    /// A student network that drives a share of the episodes (each step still labelled by the
    /// teacher), so that the data covers the states the student gets itself into.
    pub student: Option<Student>,
}

pub struct Student {
    pub net: Arc<Transformer>,
    pub share: f64,
}

impl Student {
    /// Whether episode `index` is the student's: spread evenly, `share` of every run of
    /// episodes, the same whatever the thread count.
    pub fn drives(&self, index: u32) -> bool {
        let (i, share) = (index as f64, self.share);
        ((i + 1.0) * share).floor() > (i * share).floor()
    }
}

/// Drives with the student and remembers the teacher's action for the same state, the label.
struct Labelled<'a> {
    teacher: Box<dyn Policy>,
    student: NetPlayer,
    label: &'a Cell<(f64, f64)>,
}

impl Policy for Labelled<'_> {
    fn act(&mut self, state: &State, obs: &Observation) -> (f64, f64) {
        self.label.set(self.teacher.act(state, obs));
        self.student.act(state, obs)
    }
}

/// One episode's samples, column by column (boids zero-padded to the shard's maximum).
#[derive(Default)]
pub struct EpisodeRecord {
    index: u32,
    context: Vec<[f32; 2]>,
    predator: Vec<[f32; 4]>,
    boids: Vec<[f32; 4]>,
    count: Vec<u16>,
    target: Vec<[f32; 2]>,
    boids_at_start: u32,
    caught: u32,
    student: bool,
}

fn f32s<const N: usize>(v: [f64; N]) -> [f32; N] {
    v.map(|x| x as f32)
}

impl PredatorGenerator {
    fn protocol(&self) -> Protocol {
        Protocol::Default {
            max_boids: self.max_boids,
            steps: self.steps,
        }
    }

    fn record(&self, rec: &mut EpisodeRecord, obs: &Observation, target: (f64, f64)) {
        rec.context.push(f32s(obs.context));
        rec.predator.push(f32s(obs.predator));
        rec.count.push(obs.boids.len() as u16);
        rec.boids.extend(obs.boids.iter().map(|b| f32s(*b)));
        rec.boids.extend(std::iter::repeat_n(
            [0.0; 4],
            self.max_boids as usize - obs.boids.len(),
        ));
        rec.target.push([target.0 as f32, target.1 as f32]);
    }
}

impl Task for PredatorGenerator {
    type Episode = EpisodeRecord;

    fn name(&self) -> &'static str {
        "predator"
    }

    fn play(&self, index: u32, rng: &mut Rng) -> EpisodeRecord {
        let start: State = self.protocol().initial_state(index, rng);
        let mut rec = EpisodeRecord {
            index,
            boids_at_start: start.boids.len() as u32,
            ..EpisodeRecord::default()
        };
        let mut teacher = self.teacher.build();
        let outcome = match &self.student {
            Some(student) if student.drives(index) => {
                let label = Cell::new((0.0, 0.0));
                let mut driver = Labelled {
                    teacher,
                    student: NetPlayer::new(student.net.clone(), Decoding::Direction),
                    label: &label,
                };
                rec.student = true;
                run(start, self.steps, &mut driver, |_, obs, _| {
                    self.record(&mut rec, obs, label.get())
                })
            }
            _ => run(start, self.steps, teacher.as_mut(), |_, obs, action| {
                self.record(&mut rec, obs, action)
            }),
        };
        rec.caught = outcome.caught;
        rec
    }

    fn rows(episode: &EpisodeRecord) -> usize {
        episode.count.len()
    }

    fn tensors<'a>(&self, episodes: &'a [EpisodeRecord]) -> Vec<Tensor<'a>> {
        let n: usize = episodes.iter().map(Self::rows).sum();
        let m = self.max_boids as usize;
        vec![
            tensor_of(
                "context",
                Dtype::F32,
                vec![n, 2],
                episodes,
                |e: &EpisodeRecord, out| e.context.iter().try_for_each(|r| put_f32s(out, r)),
            ),
            tensor_of(
                "predator",
                Dtype::F32,
                vec![n, 4],
                episodes,
                |e: &EpisodeRecord, out| e.predator.iter().try_for_each(|r| put_f32s(out, r)),
            ),
            tensor_of(
                "boids",
                Dtype::F32,
                vec![n, m, 4],
                episodes,
                |e: &EpisodeRecord, out| e.boids.iter().try_for_each(|r| put_f32s(out, r)),
            ),
            tensor_of(
                "count",
                Dtype::U16,
                vec![n],
                episodes,
                |e: &EpisodeRecord, out| {
                    e.count
                        .iter()
                        .try_for_each(|c| out.write_all(&c.to_le_bytes()))
                },
            ),
            tensor_of(
                "target",
                Dtype::F32,
                vec![n, 2],
                episodes,
                |e: &EpisodeRecord, out| e.target.iter().try_for_each(|r| put_f32s(out, r)),
            ),
            tensor_of(
                "episode",
                Dtype::U32,
                vec![n],
                episodes,
                |e: &EpisodeRecord, out| {
                    (0..e.count.len()).try_for_each(|_| out.write_all(&e.index.to_le_bytes()))
                },
            ),
            tensor_of(
                "step",
                Dtype::U32,
                vec![n],
                episodes,
                |e: &EpisodeRecord, out| {
                    (0..e.count.len() as u32).try_for_each(|s| out.write_all(&s.to_le_bytes()))
                },
            ),
        ]
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        vec![
            ("teacher", self.teacher.name()),
            ("episodes", self.episodes.to_string()),
            ("max_boids", self.max_boids.to_string()),
            ("steps", self.steps.to_string()),
            (
                "student_share",
                self.student.as_ref().map_or(0.0, |s| s.share).to_string(),
            ),
        ]
    }

    fn report(&self, episodes: &[EpisodeRecord], _: f64) -> Map<String, Value> {
        let boids: u64 = episodes.iter().map(|e| e.boids_at_start as u64).sum();
        let caught: u64 = episodes.iter().map(|e| e.caught as u64).sum();
        let rates: Vec<f64> = episodes
            .iter()
            .map(|e| e.caught as f64 / e.boids_at_start.max(1) as f64)
            .collect();
        let mut out = Map::new();
        let driven = episodes.iter().filter(|e| e.student).count();
        out.insert("student_episodes".into(), json!(driven));
        out.insert("boids".into(), json!(boids));
        out.insert("caught".into(), json!(caught));
        out.insert(
            "mean_catch_rate".into(),
            json!(rates.iter().sum::<f64>() / rates.len().max(1) as f64),
        );
        out
    }
}
