//! The planning teacher (docs/predator.md, section 6). Every third step it rolls out, on a copy
//! of the flock within 500 px run by the real simulation, a closed-loop interception policy for
//! each candidate target (the 12 nearest boids, and "whichever boid can be met soonest") for
//! 150 steps, scores each rollout by its catches (earlier ones count more) and then by how close
//! it ends to a boid, and follows the best: its first action, then, until the next plan, an
//! interception of its target. Far from every boid it intercepts.

use super::encode::{pursuit, wrapped_delta, Observation};
use super::episode::Policy;
use super::intercept::{intercept, intercept_of};
use super::sim::{Boid, State, V2};

/// What a planner can be told: `planner:KEY=VALUE:...` for players and teachers (`planner_settings`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlannerSettings {
    /// Candidate targets: the nearest this many boids, besides "earliest interception".
    pub targets: usize,
    /// Steps each rollout runs.
    pub horizon: u32,
    /// A plan is made every this many steps.
    pub replan_every: u32,
    /// Boids farther than this (on the torus) are left out of the rollouts.
    pub radius: f64,
    /// Between plans, follow the best rollout's policy (intercept its target) rather than
    /// repeat its first action.
    pub follow: bool,
}

/// The `planner[:KEY=VALUE...]` text that `planner_settings` reads back: the settings that
/// differ from the defaults, in a fixed order.
impl std::fmt::Display for PlannerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let default = PlannerSettings::default();
        write!(f, "planner")?;
        if self.targets != default.targets {
            write!(f, ":targets={}", self.targets)?;
        }
        if self.horizon != default.horizon {
            write!(f, ":horizon={}", self.horizon)?;
        }
        if self.replan_every != default.replan_every {
            write!(f, ":replan={}", self.replan_every)?;
        }
        if self.radius != default.radius {
            write!(f, ":radius={}", self.radius)?;
        }
        if self.follow != default.follow {
            write!(f, ":follow={}", u8::from(self.follow))?;
        }
        Ok(())
    }
}

/// `planner`, or `planner:` with some of its settings changed, `:`-separated (a list of players
/// is comma-separated): `targets=12:horizon=150:replan=3:radius=500:follow=1` are the defaults.
/// Players and the generator's teacher read it alike.
pub fn planner_settings(text: &str) -> Result<PlannerSettings, String> {
    let options = match text.strip_prefix("planner") {
        Some(rest) if rest.is_empty() || rest.starts_with(':') => rest,
        _ => {
            return Err(format!(
                "'{text}' is not a planner: expected planner[:KEY=VALUE...]"
            ))
        }
    };
    let mut settings = PlannerSettings::default();
    for option in options.split(':').filter(|o| !o.is_empty()) {
        let bad = || {
            format!(
                "planner option '{option}': expected targets=N, horizon=N, replan=N (each >= 1), radius=PIXELS (> 0) or follow=0|1"
            )
        };
        let (key, value) = option.split_once('=').ok_or_else(bad)?;
        let whole = || {
            value
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(bad)
        };
        match key {
            "targets" => settings.targets = whole()? as usize,
            "horizon" => settings.horizon = whole()?,
            "replan" => settings.replan_every = whole()?,
            "follow" => {
                settings.follow = match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(bad()),
                }
            }
            "radius" => {
                settings.radius = value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(bad)?
            }
            _ => return Err(bad()),
        }
    }
    Ok(settings)
}

impl Default for PlannerSettings {
    fn default() -> Self {
        PlannerSettings {
            targets: 12,
            horizon: 150,
            replan_every: 3,
            radius: 500.0,
            follow: true,
        }
    }
}

pub struct Planner {
    settings: PlannerSettings,
    plan: (f64, f64),
    plan_target: Option<u32>,
    age: u32,
    world: State,
    caught: Vec<u32>,
}

impl Default for Planner {
    fn default() -> Self {
        Planner::new(PlannerSettings::default())
    }
}

impl Planner {
    pub fn new(settings: PlannerSettings) -> Planner {
        Planner {
            settings,
            plan: (0.0, 0.0),
            plan_target: None,
            age: u32::MAX,
            world: State {
                width: 0.0,
                height: 0.0,
                boids: Vec::new(),
                predator: super::sim::Predator {
                    pos: V2::ZERO,
                    vel: V2::ZERO,
                },
            },
            caught: Vec::new(),
        }
    }
}

/// Distance on the torus the canvas wraps into (one wrap per axis, as the encoder does).
fn torus_distance(a: V2, b: V2, width: f64, height: f64) -> f64 {
    let (dx, dy) = (
        wrapped_delta(a.x - b.x, width),
        wrapped_delta(a.y - b.y, height),
    );
    (dx * dx + dy * dy).sqrt()
}

impl Planner {
    /// Rolls out "intercept `target`" (or the earliest interception when None, or once the
    /// target is caught) for the horizon on a copy of the nearby flock; returns its score and
    /// its first action.
    fn rollout(
        &mut self,
        state: &State,
        nearby: &[Boid],
        target: Option<u32>,
    ) -> (f64, (f64, f64)) {
        self.world.width = state.width;
        self.world.height = state.height;
        self.world.predator = state.predator;
        self.world.boids.clear();
        self.world.boids.extend_from_slice(nearby);
        let (mut score, mut first) = (0.0, None);
        let mut target = target;
        let horizon = self.settings.horizon;
        for t in 0..horizon {
            if target.is_some_and(|id| !self.world.boids.iter().any(|b| b.id == id)) {
                target = None;
            }
            let action = intercept_of(&self.world, target).unwrap_or((0.0, 0.0));
            first.get_or_insert(action);
            self.world.step_into(action, &mut self.caught);
            score += self.caught.len() as f64 * 1000.0 * (1.0 - t as f64 / (2.0 * horizon as f64));
            if self.world.boids.is_empty() {
                return (score, first.unwrap_or((0.0, 0.0)));
            }
        }
        let p = self.world.predator.pos;
        let nearest = self
            .world
            .boids
            .iter()
            .map(|b| torus_distance(b.pos, p, state.width, state.height))
            .fold(f64::INFINITY, f64::min);
        (score - nearest, first.unwrap_or((0.0, 0.0)))
    }
}

impl Policy for Planner {
    fn act(&mut self, state: &State, obs: &Observation) -> (f64, f64) {
        let settings = self.settings;
        if self.age < settings.replan_every {
            self.age += 1;
            if settings.follow {
                let target = self
                    .plan_target
                    .filter(|id| state.boids.iter().any(|b| b.id == *id));
                if let Some(action) = intercept_of(state, target) {
                    return action;
                }
            }
            return self.plan;
        }
        self.age = 1;
        let p = state.predator.pos;
        let mut nearby: Vec<(f64, Boid)> = state
            .boids
            .iter()
            .map(|b| (torus_distance(b.pos, p, state.width, state.height), *b))
            .filter(|(d, _)| *d < settings.radius)
            .collect();
        if nearby.is_empty() {
            self.plan = intercept(state).unwrap_or_else(|| pursuit(obs));
            return self.plan;
        }
        nearby.sort_by(|a, b| a.0.total_cmp(&b.0));
        let flock: Vec<Boid> = nearby.iter().map(|(_, b)| *b).collect();
        let targets: Vec<Option<u32>> = std::iter::once(None)
            .chain(flock.iter().take(settings.targets).map(|b| Some(b.id)))
            .collect();
        let mut best = (f64::NEG_INFINITY, (0.0, 0.0), None);
        for target in targets {
            let (score, action) = self.rollout(state, &flock, target);
            if score > best.0 {
                best = (score, action, target);
            }
        }
        (self.plan, self.plan_target) = (best.1, best.2);
        self.plan
    }
}
