//! Episodes (docs/predator.md, section 4): the initial state drawn from a protocol, and one
//! episode played by a policy, optionally labelled by a teacher.

use super::encode::Observation;
use super::sim::{Boid, Predator, State, V2};
use crate::core::Rng;
use std::f64::consts::TAU;

/// Where episodes come from: the default distribution, or the old system's own test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Canvas 320..=1920 x 320..=1080, 1..=max_boids boids, formation drawn, `steps` steps.
    Default { max_boids: u32, steps: u32 },
    /// 12 boids on 400 x 300 for 2500 steps, formations alternating (even episodes scattered).
    Legacy,
}

impl Protocol {
    pub fn steps(self) -> u32 {
        match self {
            Protocol::Default { steps, .. } => steps,
            Protocol::Legacy => 2500,
        }
    }

    pub fn max_boids(self) -> u32 {
        match self {
            Protocol::Default { max_boids, .. } => max_boids,
            Protocol::Legacy => 12,
        }
    }

    /// The initial state of episode `index`, drawn from `rng` in the documented order.
    pub fn initial_state(self, index: u32, rng: &mut Rng) -> State {
        let (width, height, n, clustered) = match self {
            Protocol::Default { max_boids, .. } => {
                let width = (320 + rng.below(1601)) as f64;
                let height = (320 + rng.below(761)) as f64;
                let n = 1 + rng.below(max_boids);
                (width, height, n, rng.below(2) == 1)
            }
            Protocol::Legacy => (400.0, 300.0, 12, index % 2 == 1),
        };
        if clustered {
            clustered_state(width, height, n, rng)
        } else {
            scattered_state(width, height, n, rng)
        }
    }
}

fn heading(rng: &mut Rng, speed: f64) -> V2 {
    let angle = rng.next_f64() * TAU;
    V2::new(angle.cos() * speed, angle.sin() * speed)
}

/// Boids anywhere with random headings and speeds below 3.5; the predator anywhere, below 2.
fn scattered_state(width: f64, height: f64, n: u32, rng: &mut Rng) -> State {
    let boids = (0..n)
        .map(|id| {
            let pos = V2::new(rng.next_f64() * width, rng.next_f64() * height);
            let speed = rng.next_f64() * 3.5;
            Boid {
                pos,
                vel: heading(rng, speed),
                id,
            }
        })
        .collect();
    let pos = V2::new(rng.next_f64() * width, rng.next_f64() * height);
    let speed = rng.next_f64() * 2.0;
    let predator = Predator {
        pos,
        vel: heading(rng, speed),
    };
    State {
        width,
        height,
        boids,
        predator,
    }
}

/// Boids within 50 px of a random point, unit speed; the predator at that point.
fn clustered_state(width: f64, height: f64, n: u32, rng: &mut Rng) -> State {
    let centre = V2::new(rng.next_f64() * width, rng.next_f64() * height);
    let boids = (0..n)
        .map(|id| {
            let pos = V2::new(
                centre.x + rng.next_f64() * 100.0 - 50.0,
                centre.y + rng.next_f64() * 100.0 - 50.0,
            );
            Boid {
                pos,
                vel: heading(rng, 1.0),
                id,
            }
        })
        .collect();
    let vel = V2::new(rng.next_f64() * 2.0 - 1.0, rng.next_f64() * 2.0 - 1.0);
    State {
        width,
        height,
        boids,
        predator: Predator { pos: centre, vel },
    }
}

/// Something that steers the predator.
pub trait Policy {
    /// The action for the state at the start of a step (`obs` is its encoding).
    fn act(&mut self, state: &State, obs: &Observation) -> (f64, f64);
}

/// How an episode went.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    pub boids: u32,
    pub caught: u32,
    pub steps: u32,
    /// The step after which the last boid was caught, if all were.
    pub cleared_at: Option<u32>,
    pub nanos_acting: u64,
}

impl Outcome {
    pub fn catch_rate(&self) -> f64 {
        if self.boids == 0 {
            0.0
        } else {
            self.caught as f64 / self.boids as f64
        }
    }
}

/// Plays one episode from `state` with `driver` choosing the actions; `on_step` sees every
/// state before its step, with the observation and the action taken.
pub fn run(
    mut state: State,
    steps: u32,
    driver: &mut dyn Policy,
    mut on_step: impl FnMut(&State, &Observation, (f64, f64)),
) -> Outcome {
    let mut out = Outcome {
        boids: state.boids.len() as u32,
        ..Outcome::default()
    };
    let (mut obs, mut caught) = (Observation::default(), Vec::new());
    for step in 0..steps {
        if state.boids.is_empty() {
            break;
        }
        obs.update(&state);
        let started = std::time::Instant::now();
        let action = driver.act(&state, &obs);
        out.nanos_acting += started.elapsed().as_nanos() as u64;
        on_step(&state, &obs, action);
        state.step_into(action, &mut caught);
        out.caught += caught.len() as u32;
        out.steps = step + 1;
        if state.boids.is_empty() {
            out.cleared_at = Some(step + 1);
        }
    }
    out
}
