//! Who steers the predator: `still`, `random`, `pursuit`, `lead` (interception), `planner` and
//! `net:FILE` (a transformer from the browser file or our own, at full thrust in the direction it
//! gives) and `net-raw:FILE` (its output as it is).

use super::encode::{pursuit, Observation};
use super::episode::Policy;
use super::intercept::intercept;
use super::nn::{Scratch, Transformer};
use super::planner::{planner_settings, Planner, PlannerSettings};
use super::sim::State;
use crate::core::Rng;
use std::sync::Arc;

#[derive(Clone)]
pub enum PlayerSpec {
    Still,
    Random,
    Pursuit,
    Lead,
    Planner(PlannerSettings),
    Net(Arc<Transformer>, Decoding),
}

impl PlayerSpec {
    pub fn parse(text: &str) -> Result<PlayerSpec, String> {
        match text {
            "still" => Ok(PlayerSpec::Still),
            "random" => Ok(PlayerSpec::Random),
            "pursuit" => Ok(PlayerSpec::Pursuit),
            "lead" => Ok(PlayerSpec::Lead),
            _ if text == "planner" || text.starts_with("planner:") => {
                planner_settings(text).map(PlayerSpec::Planner)
            }
            _ => {
                let (path, decoding) = if let Some(path) = text.strip_prefix("net:") {
                    (path, Decoding::Direction)
                } else if let Some(path) = text.strip_prefix("net-raw:") {
                    (path, Decoding::Raw)
                } else {
                    return Err(format!(
                        "'{text}' is not a player: expected still, random, pursuit, lead, planner[:KEY=VALUE...], net:FILE or net-raw:FILE"
                    ));
                };
                Transformer::load(std::path::Path::new(path))
                    .map(|net| PlayerSpec::Net(Arc::new(net), decoding))
            }
        }
    }

    /// A fresh player; `rng` is the player's own stream (only `random` draws from it).
    pub fn build(&self, rng: Rng) -> Box<dyn Policy> {
        match self {
            PlayerSpec::Still => Box::new(Still),
            PlayerSpec::Random => Box::new(RandomPlayer(rng)),
            PlayerSpec::Pursuit => Box::new(Pursuit),
            PlayerSpec::Lead => Box::new(Lead),
            PlayerSpec::Planner(settings) => Box::new(Planner::new(*settings)),
            PlayerSpec::Net(net, decoding) => Box::new(NetPlayer::new(net.clone(), *decoding)),
        }
    }
}

/// How a network's output becomes the predator's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoding {
    /// Full thrust (a unit vector) in the output's direction, as every teacher acts. A network
    /// trained by squared error shortens its output where the teacher's direction is uncertain
    /// (it averages the candidates), which would also cost it thrust; the direction keeps the
    /// average and the teacher's strength. An output shorter than 1e-9 stays as it is.
    Direction,
    /// The output as it is, each component in (-1, 1).
    Raw,
}

impl Decoding {
    pub fn apply(self, [x, y]: [f32; 2]) -> (f64, f64) {
        let (x, y) = (x as f64, y as f64);
        let norm = (x * x + y * y).sqrt();
        match self {
            Decoding::Direction if norm >= 1e-9 => (x / norm, y / norm),
            _ => (x, y),
        }
    }
}

/// One network call per step.
pub struct NetPlayer {
    pub net: Arc<Transformer>,
    pub decoding: Decoding,
    pub scratch: Scratch,
}

impl NetPlayer {
    pub fn new(net: Arc<Transformer>, decoding: Decoding) -> NetPlayer {
        NetPlayer {
            net,
            decoding,
            scratch: Scratch::default(),
        }
    }
}

impl Policy for NetPlayer {
    fn act(&mut self, _: &State, obs: &Observation) -> (f64, f64) {
        self.decoding
            .apply(self.net.forward(obs, &mut self.scratch))
    }
}

pub struct Still;

impl Policy for Still {
    fn act(&mut self, _: &State, _: &Observation) -> (f64, f64) {
        (0.0, 0.0)
    }
}

pub struct RandomPlayer(pub Rng);

impl Policy for RandomPlayer {
    fn act(&mut self, _: &State, _: &Observation) -> (f64, f64) {
        (self.0.next_f64() * 2.0 - 1.0, self.0.next_f64() * 2.0 - 1.0)
    }
}

pub struct Pursuit;

impl Policy for Pursuit {
    fn act(&mut self, _: &State, obs: &Observation) -> (f64, f64) {
        pursuit(obs)
    }
}

/// Interception: for each boid (and its images one canvas away on each axis, since the canvas
/// wraps), the earliest time t at which a predator at full speed from here could meet it if it
/// kept its velocity (|r + v t| = 2 t); head for the earliest meeting point. Without one, pursuit.
pub struct Lead;

impl Policy for Lead {
    fn act(&mut self, state: &State, obs: &Observation) -> (f64, f64) {
        intercept(state).unwrap_or_else(|| pursuit(obs))
    }
}
