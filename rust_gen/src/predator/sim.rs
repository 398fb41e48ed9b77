//! The boids simulation (docs/predator.md, sections 1-3), in f64 with every operation in the
//! documented order, so that the generator, the evaluator and the browser produce bit-identical
//! trajectories from the same state and actions.

use crate::core::Rng;
use serde::{Deserialize, Serialize};

pub const BOID_MAX_SPEED: f64 = 3.5;
pub const BOID_MAX_FORCE: f64 = 0.1;
pub const DESIRED_SEPARATION: f64 = 40.0;
pub const NEIGHBOR_DISTANCE: f64 = 60.0;
pub const BOID_BORDER_OFFSET: f64 = 10.0;
pub const PREDATOR_MAX_SPEED: f64 = 2.0;
pub const PREDATOR_FORCE: f64 = 0.2;
pub const PREDATOR_SIZE: f64 = 18.0;
/// 0.7 * 18, as the browser computes it.
pub const CATCH_RADIUS: f64 = 0.7 * PREDATOR_SIZE;
pub const PREDATOR_RANGE: f64 = 80.0;
pub const PREDATOR_TURN_FACTOR: f64 = 0.3;
pub const PREDATOR_BORDER_OFFSET: f64 = 20.0;
pub const SEPARATION_WEIGHT: f64 = 2.0;
pub const COHESION_WEIGHT: f64 = 1.0;
pub const ALIGNMENT_WEIGHT: f64 = 1.0;
pub const EPSILON: f64 = 1e-7;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct V2 {
    pub x: f64,
    pub y: f64,
}

impl V2 {
    pub const ZERO: V2 = V2 { x: 0.0, y: 0.0 };

    pub fn new(x: f64, y: f64) -> V2 {
        V2 { x, y }
    }

    fn add(self, o: V2) -> V2 {
        V2::new(self.x + o.x, self.y + o.y)
    }

    fn sub(self, o: V2) -> V2 {
        V2::new(self.x - o.x, self.y - o.y)
    }

    fn mul(self, k: f64) -> V2 {
        V2::new(self.x * k, self.y * k)
    }

    fn div(self, k: f64) -> V2 {
        V2::new(self.x / k, self.y / k)
    }

    /// The exact Euclidean norm: sqrt(x*x + y*y).
    pub fn norm(self) -> f64 {
        (self.x * self.x + self.y * self.y).sqrt()
    }

    /// The fast magnitude: 0.96 * max(|x|, |y|) + 0.398 * min(|x|, |y|).
    pub fn fm(self) -> f64 {
        let (ax, ay) = (self.x.abs(), self.y.abs());
        0.96 * ax.max(ay) + 0.398 * ax.min(ay)
    }

    /// If fm(v) > m: v * (m / fm(v)).
    pub fn limit(self, m: f64) -> V2 {
        let f = self.fm();
        if f > m {
            self.mul(m / f)
        } else {
            self
        }
    }

    /// If fm(v) > 0: v * (m / fm(v)); a zero vector stays zero.
    pub fn set_mag(self, m: f64) -> V2 {
        let f = self.fm();
        if f > 0.0 {
            self.mul(m / f)
        } else {
            self
        }
    }

    /// If fm(v) > 0: v / fm(v).
    pub fn fast_normalize(self) -> V2 {
        let f = self.fm();
        if f > 0.0 {
            self.div(f)
        } else {
            self
        }
    }

    /// If |v| > 0: v / |v| (Euclidean); a zero vector stays zero.
    pub fn normalize(self) -> V2 {
        let n = self.norm();
        if n > 0.0 {
            self.div(n)
        } else {
            self
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Boid {
    pub pos: V2,
    pub vel: V2,
    pub id: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Predator {
    pub pos: V2,
    pub vel: V2,
}

/// Everything the simulation needs: the canvas, the flock in array order, the predator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub width: f64,
    pub height: f64,
    pub boids: Vec<Boid>,
    pub predator: Predator,
}

/// A flock of `n` boids spread over a 1280 x 720 canvas, the predator still in the middle (for
/// the benchmarks and the network's tests).
pub(crate) fn flock(n: u32) -> State {
    let mut rng = Rng::new(n as u64);
    let boids = (0..n)
        .map(|id| Boid {
            pos: V2::new(rng.next_f64() * 1280.0, rng.next_f64() * 720.0),
            vel: V2::new(rng.next_f64() * 4.0 - 2.0, rng.next_f64() * 4.0 - 2.0),
            id,
        })
        .collect();
    State {
        width: 1280.0,
        height: 720.0,
        boids,
        predator: Predator {
            pos: V2::new(640.0, 360.0),
            vel: V2::ZERO,
        },
    }
}

/// Wraps one coordinate: past `size + offset` it re-enters at `-offset`, and the other way.
pub fn wrap(x: f64, size: f64, offset: f64) -> f64 {
    if x > size + offset {
        -offset
    } else if x < -offset {
        size + offset
    } else {
        x
    }
}

fn wrap2(p: V2, width: f64, height: f64, offset: f64) -> V2 {
    V2::new(wrap(p.x, width, offset), wrap(p.y, height, offset))
}

/// The catch rule: strictly closer than the catch radius, Euclidean, not wrap-aware.
pub fn within_catch(boid: V2, predator: V2) -> bool {
    boid.sub(predator).norm() < CATCH_RADIUS
}

/// Clamps an action component to [-1, 1].
pub fn clamp_unit(a: f64) -> f64 {
    a.clamp(-1.0, 1.0)
}

/// The steering of boid `i` (the flock as it stands now, boids before `i` already moved this
/// step), with `threat` the predator's position at the start of the step.
fn acceleration(boids: &[Boid], i: usize, threat: V2) -> V2 {
    let me = boids[i];
    let (mut centre, mut cohesion_count) = (V2::ZERO, 0u32);
    let (mut away, mut separation_count) = (V2::ZERO, 0u32);
    let (mut heading, mut alignment_count) = (V2::ZERO, 0u32);
    for (j, other) in boids.iter().enumerate() {
        if j == i {
            continue;
        }
        let offset = me.pos.sub(other.pos);
        // Past sqrt(3601) > 60 no rule applies (d > 60.008): skip the square roots. Exact.
        if offset.x * offset.x + offset.y * offset.y > NEIGHBOR_DISTANCE * NEIGHBOR_DISTANCE + 1.0 {
            continue;
        }
        let d = offset.norm() + EPSILON;
        if d <= NEIGHBOR_DISTANCE {
            centre = centre.add(other.pos);
            cohesion_count += 1;
        }
        if d > 0.0 && d < DESIRED_SEPARATION {
            away = away.add(offset.normalize().div(d));
            separation_count += 1;
        }
        if d > 0.0 && d < NEIGHBOR_DISTANCE {
            heading = heading.add(other.vel);
            alignment_count += 1;
        }
    }
    let steer = |desired: V2| {
        desired
            .set_mag(BOID_MAX_SPEED)
            .sub(me.vel)
            .limit(BOID_MAX_FORCE)
    };
    let cohesion = if cohesion_count > 0 {
        steer(centre.div(cohesion_count as f64).sub(me.pos))
    } else {
        V2::ZERO
    };
    let separation = if separation_count > 0 {
        steer(away.div(separation_count as f64))
    } else {
        V2::ZERO
    };
    let alignment = if alignment_count > 0 {
        steer(heading.div(alignment_count as f64))
    } else {
        V2::ZERO
    };
    let dp = me.pos.sub(threat).norm() + EPSILON;
    let avoidance = if dp < PREDATOR_RANGE {
        let push = (PREDATOR_RANGE - dp) / PREDATOR_RANGE * PREDATOR_TURN_FACTOR;
        me.pos
            .sub(threat)
            .fast_normalize()
            .mul(push)
            .limit(BOID_MAX_FORCE * 1.5)
    } else {
        V2::ZERO
    };
    cohesion
        .mul(COHESION_WEIGHT)
        .add(separation.mul(SEPARATION_WEIGHT))
        .add(alignment.mul(ALIGNMENT_WEIGHT))
        .add(avoidance)
}

impl State {
    /// One step with action (ax, ay) (clamped to [-1, 1]): boids in order and in place, then
    /// the predator, then the catch. Returns the ids of the boids caught, in array order.
    pub fn step(&mut self, action: (f64, f64)) -> Vec<u32> {
        let mut caught = Vec::new();
        self.step_into(action, &mut caught);
        caught
    }

    /// `step`, appending the caught ids to `caught` (cleared first): no allocation per step.
    pub fn step_into(&mut self, action: (f64, f64), caught: &mut Vec<u32>) {
        let (w, h) = (self.width, self.height);
        let threat = self.predator.pos;
        for i in 0..self.boids.len() {
            let a = acceleration(&self.boids, i, threat);
            let boid = &mut self.boids[i];
            boid.vel = boid.vel.add(a).limit(BOID_MAX_SPEED);
            boid.pos = wrap2(boid.pos.add(boid.vel), w, h, BOID_BORDER_OFFSET);
        }
        let push = V2::new(
            clamp_unit(action.0) * PREDATOR_FORCE,
            clamp_unit(action.1) * PREDATOR_FORCE,
        );
        let p = &mut self.predator;
        p.vel = p.vel.add(push).limit(PREDATOR_MAX_SPEED);
        p.pos = wrap2(p.pos.add(p.vel), w, h, PREDATOR_BORDER_OFFSET);
        let at = p.pos;
        caught.clear();
        caught.extend(
            self.boids
                .iter()
                .filter(|b| within_catch(b.pos, at))
                .map(|b| b.id),
        );
        if !caught.is_empty() {
            // Descending index order, so survivors keep their relative order.
            for i in (0..self.boids.len()).rev() {
                if within_catch(self.boids[i].pos, at) {
                    self.boids.remove(i);
                }
            }
        }
    }
}
