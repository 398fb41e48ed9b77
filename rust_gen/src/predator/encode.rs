//! What the network (and the pursuit teacher) sees (docs/predator.md, section 5): the canvas,
//! the predator's velocity and each boid's offset and velocity, in f64; shards store them as f32.

use super::sim::{State, BOID_MAX_SPEED};

/// Position normaliser.
pub const MAX_DISTANCE: f64 = 1000.0;
/// Velocity normaliser.
pub const VELOCITY_SCALE: f64 = BOID_MAX_SPEED;

/// One observation; `boids` is reused between steps (no allocation once it has grown).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    pub context: [f64; 2],
    pub predator: [f64; 4],
    pub boids: Vec<[f64; 4]>,
}

fn unit(v: f64) -> f64 {
    v.clamp(-1.0, 1.0)
}

/// The offset along one axis, wrapped once into the nearer copy of the canvas.
pub fn wrapped_delta(d: f64, size: f64) -> f64 {
    if d.abs() > size / 2.0 {
        if d > 0.0 {
            d - size
        } else {
            d + size
        }
    } else {
        d
    }
}

impl Observation {
    pub fn encode(state: &State) -> Observation {
        let mut obs = Observation::default();
        obs.update(state);
        obs
    }

    /// Encodes `state` into this observation.
    pub fn update(&mut self, state: &State) {
        let p = state.predator;
        self.context = [state.width / MAX_DISTANCE, state.height / MAX_DISTANCE];
        self.predator = [
            unit(p.vel.x / VELOCITY_SCALE),
            unit(p.vel.y / VELOCITY_SCALE),
            0.0,
            0.0,
        ];
        self.boids.clear();
        self.boids.extend(state.boids.iter().map(|b| {
            [
                wrapped_delta(b.pos.x - p.pos.x, state.width) / MAX_DISTANCE,
                wrapped_delta(b.pos.y - p.pos.y, state.height) / MAX_DISTANCE,
                unit(b.vel.x / VELOCITY_SCALE),
                unit(b.vel.y / VELOCITY_SCALE),
            ]
        }));
    }
}

/// Closest pursuit (the old teacher): the unit vector to the nearest boid as encoded (first
/// strict minimum), or (0, 0) with no boid or one closer than 0.001.
pub fn pursuit(obs: &Observation) -> (f64, f64) {
    let mut best: Option<(f64, f64, f64)> = None;
    for b in &obs.boids {
        let dist = (b[0] * b[0] + b[1] * b[1]).sqrt();
        if best.is_none_or(|(d, _, _)| dist < d) {
            best = Some((dist, b[0], b[1]));
        }
    }
    match best {
        Some((dist, x, y)) if dist >= 0.001 => (x / dist, y / dist),
        _ => (0.0, 0.0),
    }
}
