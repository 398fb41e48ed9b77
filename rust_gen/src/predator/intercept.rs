//! Interception geometry, shared by the `lead` player and the planning teacher: for each boid
//! (and its images one canvas away on each axis, since the canvas wraps), the earliest time t
//! at which a predator at full speed from here could meet it if it kept its velocity
//! (|r + v t| = 2 t), and the heading to that meeting point.

use super::sim::{State, PREDATOR_MAX_SPEED};

/// The smallest t > 0 with |r + v t| = speed t: when a predator at `speed` from the origin can
/// meet a point that starts at `r` and moves at `v`. None if it never can.
pub fn meet_time(r: (f64, f64), v: (f64, f64), speed: f64) -> Option<f64> {
    // (v.v - s^2) t^2 + 2 (r.v) t + r.r = 0, smallest t > 0.
    let a = v.0 * v.0 + v.1 * v.1 - speed * speed;
    let b = 2.0 * (r.0 * v.0 + r.1 * v.1);
    let c = r.0 * r.0 + r.1 * r.1;
    if a.abs() < 1e-12 {
        return (b < 0.0).then(|| -c / b);
    }
    let disc = b * b - 4.0 * a * c;
    if disc < 0.0 {
        return None;
    }
    let root = disc.sqrt();
    let (t1, t2) = ((-b - root) / (2.0 * a), (-b + root) / (2.0 * a));
    let (lo, hi) = if t1 < t2 { (t1, t2) } else { (t2, t1) };
    if lo > 0.0 {
        Some(lo)
    } else if hi > 0.0 {
        Some(hi)
    } else {
        None
    }
}

/// The heading to the earliest interception, if any within `MAX_INTERCEPT` steps.
pub fn intercept(state: &State) -> Option<(f64, f64)> {
    intercept_of(state, None)
}

/// `intercept`, of boid `target` only when given (by id).
pub fn intercept_of(state: &State, target: Option<u32>) -> Option<(f64, f64)> {
    const MAX_INTERCEPT: f64 = 2000.0;
    let p = state.predator.pos;
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
                let Some(t) = meet_time((x, y), (vx, vy), PREDATOR_MAX_SPEED) else {
                    continue;
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
