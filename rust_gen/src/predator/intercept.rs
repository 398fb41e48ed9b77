//! Interception geometry, shared by the `lead` player and the planning teacher: for each boid
//! (and its images one canvas away on each axis, since the canvas wraps), the earliest time t
//! at which a predator at full speed from here could meet it if it kept its velocity
//! (|r + v t| = 2 t), and the heading to that meeting point.

use super::sim::{State, PREDATOR_MAX_SPEED};

/// The heading to the earliest interception, if any within `MAX_INTERCEPT` steps.
pub fn intercept(state: &State) -> Option<(f64, f64)> {
    intercept_of(state, None)
}

/// `intercept`, of boid `target` only when given (by id).
pub fn intercept_of(state: &State, target: Option<u32>) -> Option<(f64, f64)> {
    const MAX_INTERCEPT: f64 = 2000.0;
    let p = state.predator.pos;
    let speed = PREDATOR_MAX_SPEED;
    let mut best: Option<(f64, f64, f64)> = None;
    for b in state
        .boids
        .iter()
        .filter(|b| target.is_none_or(|id| b.id == id))
    {
        let (rx, ry) = (b.pos.x - p.x, b.pos.y - p.y);
        let (vx, vy) = (b.vel.x, b.vel.y);
        for kx in [-1.0, 0.0, 1.0] {
            for ky in [-1.0, 0.0, 1.0] {
                let (x, y) = (rx + kx * state.width, ry + ky * state.height);
                // (v.v - s^2) t^2 + 2 (r.v) t + r.r = 0, smallest t > 0.
                let a = vx * vx + vy * vy - speed * speed;
                let bq = 2.0 * (x * vx + y * vy);
                let c = x * x + y * y;
                let t = if a.abs() < 1e-12 {
                    if bq < 0.0 {
                        -c / bq
                    } else {
                        continue;
                    }
                } else {
                    let disc = bq * bq - 4.0 * a * c;
                    if disc < 0.0 {
                        continue;
                    }
                    let root = disc.sqrt();
                    let (t1, t2) = ((-bq - root) / (2.0 * a), (-bq + root) / (2.0 * a));
                    let (lo, hi) = if t1 < t2 { (t1, t2) } else { (t2, t1) };
                    if lo > 0.0 {
                        lo
                    } else if hi > 0.0 {
                        hi
                    } else {
                        continue;
                    }
                };
                if t < MAX_INTERCEPT && best.is_none_or(|(bt, _, _)| t < bt) {
                    best = Some((t, x + vx * t, y + vy * t));
                }
            }
        }
    }
    best.map(|(_, x, y)| {
        let n = (x * x + y * y).sqrt();
        if n < 1e-9 {
            (0.0, 0.0)
        } else {
            (x / n, y / n)
        }
    })
}
