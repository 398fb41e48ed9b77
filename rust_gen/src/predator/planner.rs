//! The planning teacher (docs/predator.md, section 6). At every plan it rolls out each candidate
//! policy for `horizon` steps on a copy of the flock run by the real simulation, scores each
//! rollout and follows the best: its first action, then, until the next plan, the same policy.
//!
//! The candidates, in the order that breaks ties: `directions` constant unit directions held
//! for the whole rollout (angles 2 pi k / directions), then closed-loop closest pursuit and
//! closed-loop intercept-steer (`chase=1`), then closed-loop interceptions of the earliest
//! meetable boid and of each of the `targets` nearest boids.
//!
//! The score (`terminal=time`) is the sum over the rollout's catches of (10^6 - t), minus twice
//! the time in steps that a straight-line interception of the nearest-in-time remaining boid
//! would take (`interception_time`): a rollout that ends in front of a boid's path scores
//! better than one that ends behind it, which a predator at 2 px a step cannot catch up with
//! (boids fly at 3.5). `terminal=distance` is the earlier score: catches weighted by
//! 1000 (1 - t / 2 horizon), minus the distance to the nearest boid at the end.

use super::encode::{pursuit, wrapped_delta, Observation};
use super::episode::Policy;
use super::intercept::{intercept, intercept_of, meet_time};
use super::sim::{Boid, State, PREDATOR_FORCE, PREDATOR_MAX_SPEED, V2};

/// How a rollout's end is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminal {
    /// Catches by (10^6 - t), minus 2 x the straight-line interception time left.
    Time,
    /// Catches by 1000 (1 - t / 2 horizon), minus the distance to the nearest boid left.
    Distance,
}

/// What a planner can be told: `planner:KEY=VALUE:...` for players and teachers (`planner_settings`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlannerSettings {
    /// Constant-direction candidates (0: none).
    pub directions: u32,
    /// Closed-loop closest pursuit and intercept-steer as candidates.
    pub chase: bool,
    /// Target-locked interception candidates: the nearest this many boids, besides "earliest
    /// interception" (0: none of these).
    pub targets: usize,
    /// Steps each rollout runs.
    pub horizon: u32,
    /// A plan is made every this many steps.
    pub replan_every: u32,
    /// Boids farther than this (on the torus) are left out of the rollouts (infinite: none).
    pub radius: f64,
    /// Between plans, follow the best rollout's policy rather than repeat its first action.
    pub follow: bool,
    pub terminal: Terminal,
}

impl Default for PlannerSettings {
    fn default() -> Self {
        PlannerSettings {
            directions: 8,
            chase: true,
            targets: 0,
            horizon: 100,
            replan_every: 1,
            radius: f64::INFINITY,
            follow: true,
            terminal: Terminal::Time,
        }
    }
}

impl PlannerSettings {
    /// The planner of 2026-11 to 2026-12-06 (interceptions of the 12 nearest boids, scored by
    /// the distance at the end, a plan every 3 steps within 500 px), kept for comparisons:
    /// `planner:directions=0:chase=0:targets=12:horizon=150:replan=3:radius=500:terminal=distance`.
    pub fn legacy() -> PlannerSettings {
        PlannerSettings {
            directions: 0,
            chase: false,
            targets: 12,
            horizon: 150,
            replan_every: 3,
            radius: 500.0,
            follow: true,
            terminal: Terminal::Distance,
        }
    }
}

/// The `planner[:KEY=VALUE...]` text that `planner_settings` reads back: the settings that
/// differ from the defaults, in a fixed order.
impl std::fmt::Display for PlannerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = PlannerSettings::default();
        write!(f, "planner")?;
        if self.directions != d.directions {
            write!(f, ":directions={}", self.directions)?;
        }
        if self.chase != d.chase {
            write!(f, ":chase={}", u8::from(self.chase))?;
        }
        if self.targets != d.targets {
            write!(f, ":targets={}", self.targets)?;
        }
        if self.horizon != d.horizon {
            write!(f, ":horizon={}", self.horizon)?;
        }
        if self.replan_every != d.replan_every {
            write!(f, ":replan={}", self.replan_every)?;
        }
        if self.radius != d.radius {
            write!(f, ":radius={}", self.radius)?;
        }
        if self.follow != d.follow {
            write!(f, ":follow={}", u8::from(self.follow))?;
        }
        if self.terminal != d.terminal {
            write!(f, ":terminal=distance")?;
        }
        Ok(())
    }
}

const OPTIONS: &str =
    "expected directions=N (>= 0), chase=0|1, targets=N (>= 0), horizon=N, replan=N (each >= 1), \
radius=PIXELS (> 0), follow=0|1 or terminal=time|distance";

/// `planner`, or `planner:` with some of its settings changed, `:`-separated (a list of players
/// is comma-separated); the defaults are
/// `directions=8:chase=1:targets=0:horizon=100:replan=1:follow=1:terminal=time` and no radius.
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
        let bad = || format!("planner option '{option}': {OPTIONS}");
        let (key, value) = option.split_once('=').ok_or_else(bad)?;
        let count = |least: u32| {
            value
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= least)
                .ok_or_else(bad)
        };
        let switch = || match value {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(bad()),
        };
        match key {
            "directions" => settings.directions = count(0)?,
            "chase" => settings.chase = switch()?,
            "targets" => settings.targets = count(0)? as usize,
            "horizon" => settings.horizon = count(1)?,
            "replan" => settings.replan_every = count(1)?,
            "follow" => settings.follow = switch()?,
            "radius" => {
                settings.radius = value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(bad)?
            }
            "terminal" => {
                settings.terminal = match value {
                    "time" => Terminal::Time,
                    "distance" => Terminal::Distance,
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        }
    }
    if settings.directions == 0 && !settings.chase && settings.targets == 0 {
        return Err(format!(
            "'{text}': a planner needs candidates: directions >= 1, chase=1 or targets >= 1"
        ));
    }
    Ok(settings)
}

/// A policy that a rollout runs, and the planner follows between plans.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Candidate {
    Direction(f64, f64),
    Pursuit,
    Steer,
    /// Intercept this boid (by id), or the earliest meetable one (None, or once it is caught).
    Target(Option<u32>),
}

impl Candidate {
    fn action(&self, state: &State) -> (f64, f64) {
        match *self {
            Candidate::Direction(x, y) => (x, y),
            Candidate::Pursuit => closest_pursuit(state),
            Candidate::Steer => intercept_steer(state),
            Candidate::Target(target) => intercept_of(state, target).unwrap_or((0.0, 0.0)),
        }
    }
}

/// The displacement from the predator to each boid, one wrapped image per boid (as the
/// encoder sees it).
fn displacement(state: &State, b: &Boid) -> (f64, f64) {
    let p = state.predator.pos;
    (
        wrapped_delta(b.pos.x - p.x, state.width),
        wrapped_delta(b.pos.y - p.y, state.height),
    )
}

fn unit(x: f64, y: f64) -> (f64, f64) {
    let n = (x * x + y * y).sqrt();
    if n < 1e-9 {
        (0.0, 0.0)
    } else {
        (x / n, y / n)
    }
}

/// Full thrust toward the nearest boid.
fn closest_pursuit(state: &State) -> (f64, f64) {
    let nearest = state
        .boids
        .iter()
        .map(|b| displacement(state, b))
        .min_by(|a, b| (a.0 * a.0 + a.1 * a.1).total_cmp(&(b.0 * b.0 + b.1 * b.1)));
    match nearest {
        Some((x, y)) if (x * x + y * y).sqrt() >= 0.001 => unit(x, y),
        _ => (0.0, 0.0),
    }
}

/// The action that turns the velocity toward full speed at the earliest interception point
/// (the nearest boid when none can be met): (2 unit(aim) - velocity) / 0.2, scaled so that
/// its larger component is at most 1.
fn intercept_steer(state: &State) -> (f64, f64) {
    let mut best: Option<(f64, (f64, f64))> = None;
    let mut nearest: Option<(f64, (f64, f64))> = None;
    for b in &state.boids {
        let r = displacement(state, b);
        let d = (r.0 * r.0 + r.1 * r.1).sqrt();
        if nearest.is_none_or(|(nd, _)| d < nd) {
            nearest = Some((d, r));
        }
        if let Some(t) = meet_time(r, (b.vel.x, b.vel.y), PREDATOR_MAX_SPEED) {
            if best.is_none_or(|(bt, _)| t < bt) {
                best = Some((t, (r.0 + b.vel.x * t, r.1 + b.vel.y * t)));
            }
        }
    }
    let Some((_, aim)) = best.or(nearest) else {
        return (0.0, 0.0);
    };
    let (ux, uy) = unit(aim.0, aim.1);
    let v = state.predator.vel;
    let (ax, ay) = (
        (PREDATOR_MAX_SPEED * ux - v.x) / PREDATOR_FORCE,
        (PREDATOR_MAX_SPEED * uy - v.y) / PREDATOR_FORCE,
    );
    let larger = ax.abs().max(ay.abs());
    if larger > 1.0 {
        (ax / larger, ay / larger)
    } else {
        (ax, ay)
    }
}

/// The terminal value's time: over the boids left, the smallest number of steps in which a
/// predator at full speed in a straight line could meet one that keeps its velocity
/// (|r + v t| = 2 t, r the wrapped displacement); a boid that cannot be met counts as its
/// distance / 2 + 200. Zero when no boid is left.
pub fn interception_time(state: &State) -> f64 {
    state
        .boids
        .iter()
        .map(|b| {
            let r = displacement(state, b);
            meet_time(r, (b.vel.x, b.vel.y), PREDATOR_MAX_SPEED)
                .unwrap_or_else(|| (r.0 * r.0 + r.1 * r.1).sqrt() / 2.0 + 200.0)
        })
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))))
        .unwrap_or(0.0)
}

pub struct Planner {
    settings: PlannerSettings,
    candidates: Vec<Candidate>,
    plan: (f64, f64),
    /// The best rollout's policy, followed between plans.
    plan_policy: Candidate,
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
        let n = settings.directions;
        let mut candidates: Vec<Candidate> = (0..n)
            .map(|k| {
                let angle = 2.0 * std::f64::consts::PI * f64::from(k) / f64::from(n);
                Candidate::Direction(angle.cos(), angle.sin())
            })
            .collect();
        if settings.chase {
            candidates.extend([Candidate::Pursuit, Candidate::Steer]);
        }
        Planner {
            settings,
            candidates,
            plan: (0.0, 0.0),
            plan_policy: Candidate::Target(None),
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

    /// Runs `candidate` for the horizon on a copy of `nearby` and the predator; returns its
    /// score and its first action.
    fn rollout(
        &mut self,
        state: &State,
        nearby: &[Boid],
        candidate: Candidate,
    ) -> (f64, (f64, f64)) {
        self.world.width = state.width;
        self.world.height = state.height;
        self.world.predator = state.predator;
        self.world.boids.clear();
        self.world.boids.extend_from_slice(nearby);
        let (mut score, mut first) = (0.0, None);
        let mut policy = candidate;
        let horizon = self.settings.horizon;
        for t in 0..horizon {
            if let Candidate::Target(Some(id)) = policy {
                if !self.world.boids.iter().any(|b| b.id == id) {
                    policy = Candidate::Target(None);
                }
            }
            let action = policy.action(&self.world);
            first.get_or_insert(action);
            self.world.step_into(action, &mut self.caught);
            let catches = self.caught.len() as f64;
            score += match self.settings.terminal {
                Terminal::Time => catches * (1e6 - f64::from(t)),
                Terminal::Distance => {
                    catches * 1000.0 * (1.0 - f64::from(t) / (2.0 * f64::from(horizon)))
                }
            };
            if self.world.boids.is_empty() {
                return (score, first.unwrap_or((0.0, 0.0)));
            }
        }
        let end = match self.settings.terminal {
            Terminal::Time => 2.0 * interception_time(&self.world),
            Terminal::Distance => self
                .world
                .boids
                .iter()
                .map(|b| torus_distance(b.pos, self.world.predator.pos, state.width, state.height))
                .fold(f64::INFINITY, f64::min),
        };
        (score - end, first.unwrap_or((0.0, 0.0)))
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

impl Policy for Planner {
    fn act(&mut self, state: &State, obs: &Observation) -> (f64, f64) {
        let settings = self.settings;
        if self.age < settings.replan_every {
            self.age += 1;
            if settings.follow {
                return match self.plan_policy {
                    Candidate::Target(target) => {
                        let alive = target.filter(|id| state.boids.iter().any(|b| b.id == *id));
                        intercept_of(state, alive).unwrap_or(self.plan)
                    }
                    policy => policy.action(state),
                };
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
            // Far from every boid (only with a radius): intercept; the policy followed is kept.
            self.plan = intercept(state).unwrap_or_else(|| pursuit(obs));
            return self.plan;
        }
        let mut candidates = self.candidates.clone();
        if settings.targets > 0 {
            // Sorted by distance (a stable sort keeps the flock's order among equals).
            nearby.sort_by(|a, b| a.0.total_cmp(&b.0));
            candidates.push(Candidate::Target(None));
            candidates.extend(
                nearby
                    .iter()
                    .take(settings.targets)
                    .map(|(_, b)| Candidate::Target(Some(b.id))),
            );
        }
        let flock: Vec<Boid> = nearby.iter().map(|(_, b)| *b).collect();
        let mut best = (f64::NEG_INFINITY, (0.0, 0.0), self.plan_policy);
        for candidate in candidates {
            let (score, action) = self.rollout(state, &flock, candidate);
            if score > best.0 {
                best = (score, action, candidate);
            }
        }
        (self.plan, self.plan_policy) = (best.1, best.2);
        self.plan
    }
}
