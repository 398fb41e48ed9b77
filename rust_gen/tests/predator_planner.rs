//! The planning teacher's terminal value on hand-computed states, its settings text, and the
//! earlier planner kept as a setting.

use rust_gen::predator::planner::{interception_time, planner_settings, PlannerSettings, Terminal};
use rust_gen::predator::sim::{Boid, Predator, State, V2};

/// A boid as (position, velocity).
type Placed = ((f64, f64), (f64, f64));

fn state(boids: &[Placed]) -> State {
    State {
        width: 1000.0,
        height: 800.0,
        boids: boids
            .iter()
            .enumerate()
            .map(|(i, &((x, y), (vx, vy)))| Boid {
                pos: V2::new(x, y),
                vel: V2::new(vx, vy),
                id: i as u32,
            })
            .collect(),
        predator: Predator {
            pos: V2::new(100.0, 100.0),
            vel: V2::ZERO,
        },
    }
}

#[test]
fn the_terminal_time_of_a_boid_coming_toward_the_predator_and_of_one_flying_away() {
    // 100 px to the right, flying left at 3: |100 - 3t| = 2t at t = 20.
    let coming = ((200.0, 100.0), (-3.0, 0.0));
    // 200 px below, flying away at 3: |200 + 3t| = 2t has no t > 0; it counts as 200 / 2 + 200.
    let away = ((100.0, 300.0), (0.0, 3.0));
    assert!((interception_time(&state(&[coming])) - 20.0).abs() < 1e-12);
    assert!((interception_time(&state(&[away])) - 300.0).abs() < 1e-12);
    assert!(
        (interception_time(&state(&[away, coming])) - 20.0).abs() < 1e-12,
        "the smallest over the boids"
    );
    // A boid beside the predator, across the wrap: 120 px to the left is 880 px to the right.
    let wrapped = ((980.0, 100.0), (-1.0, 0.0));
    // r = (-120, 0), v = (-1, 0): |-120 - t| = 2t at t = 120 (one wrapped image, as the encoder sees it).
    assert!((interception_time(&state(&[wrapped])) - 120.0).abs() < 1e-9);
    assert_eq!(interception_time(&state(&[])), 0.0, "no boid left");
}

#[test]
fn settings_read_back_as_written_and_the_earlier_planner_is_a_setting() {
    let default = planner_settings("planner").expect("default");
    assert_eq!(default, PlannerSettings::default());
    assert_eq!(
        (
            default.directions,
            default.chase,
            default.horizon,
            default.replan_every
        ),
        (8, true, 100, 1)
    );
    assert_eq!(default.terminal, Terminal::Time);
    let legacy = PlannerSettings::legacy();
    let text = legacy.to_string();
    assert_eq!(
        text,
        "planner:directions=0:chase=0:targets=12:horizon=150:replan=3:radius=500:terminal=distance"
    );
    assert_eq!(planner_settings(&text), Ok(legacy));
    for bad in [
        "planner:directions=0:chase=0",
        "planner:terminal=near",
        "planner:chase=2",
        "planner:replan=0",
    ] {
        assert!(planner_settings(bad).is_err(), "{bad}");
    }
}
