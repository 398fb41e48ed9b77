//! The predator simulation against hand-computed cases, rule by rule, and against a literal
//! transcription of the spec's step written here (bit for bit).

use rust_gen::core::Rng;
use rust_gen::predator::encode::{pursuit, wrapped_delta, Observation};
use rust_gen::predator::sim::{within_catch, wrap, Boid, Predator, State, CATCH_RADIUS, V2};

fn boid(id: u32, x: f64, y: f64, vx: f64, vy: f64) -> Boid {
    Boid {
        pos: V2::new(x, y),
        vel: V2::new(vx, vy),
        id,
    }
}

fn state(boids: Vec<Boid>, px: f64, py: f64) -> State {
    State {
        width: 1000.0,
        height: 800.0,
        boids,
        predator: Predator {
            pos: V2::new(px, py),
            vel: V2::ZERO,
        },
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn helpers() {
    let v = V2::new(3.0, -4.0);
    assert_eq!(v.fm(), 0.96 * 4.0 + 0.398 * 3.0); // 5.034
    assert!(close(v.fm(), 5.034));
    assert_eq!(v.norm(), 5.0);
    assert_eq!(v.normalize(), V2::new(0.6, -0.8));
    assert_eq!(v.limit(10.0), v, "under the limit: unchanged");
    let limited = v.limit(2.0);
    assert_eq!(limited, V2::new(3.0 * (2.0 / 5.034), -4.0 * (2.0 / 5.034)));
    assert!(close(limited.fm(), 2.0));
    assert_eq!(
        v.set_mag(1.0),
        V2::new(3.0 * (1.0 / 5.034), -4.0 * (1.0 / 5.034))
    );
    assert_eq!(v.fast_normalize(), V2::new(3.0 / 5.034, -4.0 / 5.034));
    for zero in [
        V2::ZERO.set_mag(3.5),
        V2::ZERO.fast_normalize(),
        V2::ZERO.normalize(),
        V2::ZERO.limit(0.1),
    ] {
        assert_eq!(zero, V2::ZERO, "a zero vector stays zero");
    }
    // The avoidance limit is 0.1 * 1.5 in f64: one ulp above 0.15.
    assert_eq!(0.1f64 * 1.5, 0.15000000000000002);
}

/// Two boids 30 px apart on a line, the predator far away: cohesion pulls boid 0 towards boid 1,
/// separation pushes it away (twice the weight), alignment turns it to boid 1's heading.
#[test]
fn cohesion_separation_and_alignment_by_hand() {
    let mut s = state(
        vec![
            boid(0, 100.0, 100.0, 1.0, 0.0),
            boid(1, 130.0, 100.0, 0.0, 1.0),
        ],
        600.0,
        600.0,
    );
    s.step((0.0, 0.0));
    // cohesion: set_mag((30, 0), 3.5) = (3.5 / 0.96, 0); minus (1, 0); limited to fm 0.1.
    let coh_x = 0.1 / 0.96;
    // separation: ((-1, 0) / d) set to 3.5: (-3.5 / 0.96, 0); minus (1, 0); limited.
    let sep_x = -0.1 / 0.96;
    // alignment: (0, 3.5 / 0.96) - (1, 0) = (-1, 3.6458...); fm = 3.5 + 0.398 = 3.898; limited.
    let (ali_x, ali_y) = (-0.1 / 3.898, (3.5 / 0.96) * 0.1 / 3.898);
    let (vx, vy) = (1.0 + coh_x + 2.0 * sep_x + ali_x, ali_y);
    let b0 = s.boids[0];
    assert!(
        close(b0.vel.x, vx) && close(b0.vel.y, vy),
        "{:?} vs ({vx}, {vy})",
        b0.vel
    );
    assert!(close(b0.pos.x, 100.0 + vx) && close(b0.pos.y, 100.0 + vy));
    assert!((vx - 0.87018).abs() < 1e-4 && (vy - 0.09353).abs() < 1e-4);
}

/// A boid alone within 80 px of the predator flees along the fast-normalised offset, scaled by
/// (80 - d) / 80 * 0.3 and limited to fm 0.15000000000000002.
#[test]
fn avoidance_by_hand() {
    let mut near = state(vec![boid(0, 100.0, 100.0, 0.0, 0.0)], 60.0, 100.0);
    near.step((0.0, 0.0));
    // d = 40: push = 40 / 80 * 0.3 = 0.15 (before EPSILON): just under the limit.
    let push = (80.0 - (40.0 + 1e-7)) / 80.0 * 0.3;
    let fast_norm_x = 40.0 / (0.96 * 40.0 + 0.398 * 0.0);
    assert_eq!(near.boids[0].vel, V2::new(fast_norm_x * push, 0.0));
    assert!(close(near.boids[0].vel.x, push / 0.96));
    let mut nearer = state(vec![boid(0, 100.0, 100.0, 0.0, 0.0)], 80.0, 100.0);
    nearer.step((0.0, 0.0));
    // d = 20: push 0.225 > the limit: scaled to fm 0.15000000000000002.
    assert!(close(nearer.boids[0].vel.x * 0.96, 0.15000000000000002));
    let mut far = state(vec![boid(0, 100.0, 100.0, 0.0, 0.0)], 180.5, 100.0);
    far.step((0.0, 0.0));
    assert_eq!(far.boids[0].vel, V2::ZERO, "beyond 80 px no fear");
}

#[test]
fn the_predator_accelerates_by_a_fifth_of_the_action_up_to_speed_2() {
    let mut s = state(vec![], 500.0, 400.0);
    s.step((1.0, -3.0)); // clamped to (1, -1)
    assert_eq!(s.predator.vel, V2::new(0.2, -0.2));
    assert_eq!(s.predator.pos, V2::new(500.2, 399.8));
    for _ in 0..20 {
        s.step((1.0, 0.0));
    }
    assert!(close(s.predator.vel.fm(), 2.0), "limited to fm 2");
}

#[test]
fn wraps_use_offset_10_for_boids_and_20_for_the_predator() {
    assert_eq!(wrap(1010.5, 1000.0, 10.0), -10.0);
    assert_eq!(
        wrap(1010.0, 1000.0, 10.0),
        1010.0,
        "exactly at the edge stays"
    );
    assert_eq!(wrap(-10.5, 1000.0, 10.0), 1010.0);
    assert_eq!(wrap(-20.5, 1000.0, 20.0), 1020.0);
    let mut s = state(vec![boid(0, 1009.0, 809.5, 2.0, 1.0)], 1019.5, -19.0);
    s.predator.vel = V2::new(1.0, -1.5);
    s.step((0.0, 0.0));
    assert_eq!((s.boids[0].pos.x, s.boids[0].pos.y), (-10.0, -10.0));
    assert_eq!((s.predator.pos.x, s.predator.pos.y), (-20.0, 820.0));
}

#[test]
fn the_catch_radius_is_strict_and_several_boids_go_in_one_step_in_order() {
    assert_eq!(CATCH_RADIUS, 0.7 * 18.0);
    let at = V2::new(500.0, 400.0);
    assert!(
        !within_catch(V2::new(500.0 + CATCH_RADIUS, 400.0), at),
        "exactly at the radius: not caught"
    );
    assert!(within_catch(V2::new(500.0 + 12.599, 400.0), at));
    assert!(
        !within_catch(V2::new(500.0 + 9.0, 400.0 + 9.0), at),
        "12.73 away: Euclidean, not fm (11.9)"
    );
    let mut flock = state(
        vec![
            boid(1, 200.0, 200.0, 0.0, 0.0),
            boid(2, 505.0, 400.0, 0.0, 0.0),
            boid(3, 700.0, 600.0, 0.0, 0.0),
            boid(4, 495.0, 403.0, 0.0, 0.0),
        ],
        500.0,
        400.0,
    );
    let caught = flock.step((0.0, 0.0));
    assert_eq!(caught, vec![2, 4], "both, reported in array order");
    assert_eq!(
        flock.boids.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![1, 3],
        "survivors keep their order"
    );
}

#[test]
fn coincident_boids_stay_finite() {
    let mut s = state(
        vec![
            boid(0, 300.0, 300.0, 1.0, 0.5),
            boid(1, 300.0, 300.0, -0.5, 1.0),
            boid(2, 300.0, 300.0, 0.0, 0.0),
        ],
        700.0,
        700.0,
    );
    for _ in 0..50 {
        s.step((0.3, 0.3));
        for b in &s.boids {
            assert!(
                b.pos.x.is_finite()
                    && b.pos.y.is_finite()
                    && b.vel.x.is_finite()
                    && b.vel.y.is_finite()
            );
        }
    }
}

// ---- a literal transcription of docs/predator.md section 3, as slow as it likes -------------

fn fm(x: f64, y: f64) -> f64 {
    0.96 * x.abs().max(y.abs()) + 0.398 * x.abs().min(y.abs())
}

fn limit((x, y): (f64, f64), m: f64) -> (f64, f64) {
    if fm(x, y) > m {
        (x * (m / fm(x, y)), y * (m / fm(x, y)))
    } else {
        (x, y)
    }
}

fn set_mag((x, y): (f64, f64), m: f64) -> (f64, f64) {
    if fm(x, y) > 0.0 {
        (x * (m / fm(x, y)), y * (m / fm(x, y)))
    } else {
        (x, y)
    }
}

fn norm(x: f64, y: f64) -> f64 {
    (x * x + y * y).sqrt()
}

fn wrap_ref(v: f64, size: f64, o: f64) -> f64 {
    let mut v = v;
    if v > size + o {
        v = -o;
    }
    if v < -o {
        v = size + o;
    }
    v
}

/// The spec's step; `in_place` false would let every boid see the flock as it was.
fn reference_step(s: &mut State, ax: f64, ay: f64, in_place: bool) -> Vec<u32> {
    let before = s.boids.clone();
    let (px, py) = (s.predator.pos.x, s.predator.pos.y);
    for i in 0..s.boids.len() {
        let flock = if in_place {
            s.boids.clone()
        } else {
            before.clone()
        };
        let me = flock[i];
        let (mut c, mut nc, mut sep, mut ns, mut u, mut na) =
            ((0.0, 0.0), 0.0, (0.0, 0.0), 0.0, (0.0, 0.0), 0.0);
        for (j, o) in flock.iter().enumerate() {
            if j == i {
                continue;
            }
            let d = norm(me.pos.x - o.pos.x, me.pos.y - o.pos.y) + 1e-7;
            if d <= 60.0 {
                c = (c.0 + o.pos.x, c.1 + o.pos.y);
                nc += 1.0;
            }
            if d > 0.0 && d < 40.0 {
                let (dx, dy) = (me.pos.x - o.pos.x, me.pos.y - o.pos.y);
                let n = norm(dx, dy);
                let (nx, ny) = if n > 0.0 { (dx / n, dy / n) } else { (dx, dy) };
                sep = (sep.0 + nx / d, sep.1 + ny / d);
                ns += 1.0;
            }
            if d > 0.0 && d < 60.0 {
                u = (u.0 + o.vel.x, u.1 + o.vel.y);
                na += 1.0;
            }
        }
        let steer = |t: (f64, f64)| {
            let m = set_mag(t, 3.5);
            limit((m.0 - me.vel.x, m.1 - me.vel.y), 0.1)
        };
        let coh = if nc > 0.0 {
            steer((c.0 / nc - me.pos.x, c.1 / nc - me.pos.y))
        } else {
            (0.0, 0.0)
        };
        let sp = if ns > 0.0 {
            steer((sep.0 / ns, sep.1 / ns))
        } else {
            (0.0, 0.0)
        };
        let al = if na > 0.0 {
            steer((u.0 / na, u.1 / na))
        } else {
            (0.0, 0.0)
        };
        let dp = norm(me.pos.x - px, me.pos.y - py) + 1e-7;
        let av = if dp < 80.0 {
            let (dx, dy) = (me.pos.x - px, me.pos.y - py);
            let f = fm(dx, dy);
            let (nx, ny) = if f > 0.0 { (dx / f, dy / f) } else { (dx, dy) };
            let k = (80.0 - dp) / 80.0 * 0.3;
            limit((nx * k, ny * k), 0.1 * 1.5)
        } else {
            (0.0, 0.0)
        };
        let a = (
            coh.0 * 1.0 + sp.0 * 2.0 + al.0 * 1.0 + av.0,
            coh.1 * 1.0 + sp.1 * 2.0 + al.1 * 1.0 + av.1,
        );
        let v = limit((me.vel.x + a.0, me.vel.y + a.1), 3.5);
        let b = &mut s.boids[i];
        b.vel = V2::new(v.0, v.1);
        b.pos = V2::new(
            wrap_ref(b.pos.x + v.0, s.width, 10.0),
            wrap_ref(b.pos.y + v.1, s.height, 10.0),
        );
    }
    let v = limit(
        (
            s.predator.vel.x + ax.clamp(-1.0, 1.0) * 0.2,
            s.predator.vel.y + ay.clamp(-1.0, 1.0) * 0.2,
        ),
        2.0,
    );
    s.predator.vel = V2::new(v.0, v.1);
    s.predator.pos = V2::new(
        wrap_ref(s.predator.pos.x + v.0, s.width, 20.0),
        wrap_ref(s.predator.pos.y + v.1, s.height, 20.0),
    );
    let (qx, qy) = (s.predator.pos.x, s.predator.pos.y);
    let hit: Vec<usize> = (0..s.boids.len())
        .filter(|&i| norm(s.boids[i].pos.x - qx, s.boids[i].pos.y - qy) < 0.7 * 18.0)
        .collect();
    let ids = hit.iter().map(|&i| s.boids[i].id).collect();
    for &i in hit.iter().rev() {
        s.boids.remove(i);
    }
    ids
}

fn random_state(rng: &mut Rng, n: u32, clustered: bool) -> State {
    let (w, h) = (
        320.0 + rng.below(1600) as f64,
        320.0 + rng.below(760) as f64,
    );
    let (cx, cy) = (rng.next_f64() * w, rng.next_f64() * h);
    let boids = (0..n)
        .map(|id| {
            let (x, y) = if clustered {
                (
                    cx + rng.next_f64() * 100.0 - 50.0,
                    cy + rng.next_f64() * 100.0 - 50.0,
                )
            } else {
                (rng.next_f64() * w, rng.next_f64() * h)
            };
            boid(
                id,
                x,
                y,
                rng.next_f64() * 7.0 - 3.5,
                rng.next_f64() * 7.0 - 3.5,
            )
        })
        .collect();
    let predator = Predator {
        pos: V2::new(cx, cy),
        vel: V2::new(rng.next_f64() * 2.0 - 1.0, rng.next_f64() * 2.0 - 1.0),
    };
    State {
        width: w,
        height: h,
        boids,
        predator,
    }
}

#[test]
fn steps_equal_the_literal_spec_bit_for_bit_and_the_order_is_in_place() {
    let mut rng = Rng::new(11);
    let mut order_mattered = false;
    for case in 0..24 {
        let n = 1 + rng.below(40);
        let mut fast = random_state(&mut rng, n, case % 2 == 0);
        let mut slow = fast.clone();
        let mut simultaneous = fast.clone();
        for _ in 0..150 {
            let obs = Observation::encode(&fast);
            let (ax, ay) = pursuit(&obs);
            let caught = fast.step((ax, ay));
            assert_eq!(caught, reference_step(&mut slow, ax, ay, true));
            assert_eq!(fast, slow, "case {case}");
            reference_step(&mut simultaneous, ax, ay, false);
        }
        order_mattered |= simultaneous != fast;
    }
    assert!(
        order_mattered,
        "updating boids in place must change trajectories (boid 1 sees boid 0 moved)"
    );
}

#[test]
fn the_encoder_wraps_each_offset_once() {
    assert_eq!(wrapped_delta(600.0, 1000.0), -400.0);
    assert_eq!(wrapped_delta(-600.0, 1000.0), 400.0);
    assert_eq!(
        wrapped_delta(500.0, 1000.0),
        500.0,
        "exactly half: not wrapped"
    );
    assert_eq!(wrapped_delta(1700.0, 1000.0), 700.0, "once only");
    let mut s = state(vec![boid(0, 950.0, 20.0, 7.0, -1.75)], 30.0, 780.0);
    s.predator.vel = V2::new(-2.0, 0.5);
    let obs = Observation::encode(&s);
    assert_eq!(obs.context, [1.0, 0.8]);
    assert_eq!(obs.predator, [-2.0 / 3.5, 0.5 / 3.5, 0.0, 0.0]);
    assert_eq!(obs.boids, vec![[-80.0 / 1000.0, 40.0 / 1000.0, 1.0, -0.5]]);
}

#[test]
fn pursuit_takes_the_first_nearest_boid_and_stops_when_on_top_of_it() {
    let obs = |boids: Vec<[f64; 4]>| Observation {
        context: [1.0, 1.0],
        predator: [0.0; 4],
        boids,
    };
    assert_eq!(pursuit(&obs(vec![])), (0.0, 0.0));
    // A tie: (0.03, 0.04) and (-0.05, 0) are both 0.05 away; the first wins.
    let (x, y) = pursuit(&obs(vec![
        [0.5, 0.5, 0.0, 0.0],
        [0.03, 0.04, 0.0, 0.0],
        [-0.05, 0.0, 0.0, 0.0],
    ]));
    assert_eq!((x, y), (0.03 / 0.05, 0.04 / 0.05));
    assert_eq!(
        pursuit(&obs(vec![[0.0003, 0.0004, 1.0, 1.0], [0.2, 0.0, 0.0, 0.0]])),
        (0.0, 0.0),
        "0.0005 away: on top of it"
    );
    let d = (0.0009f64 * 0.0009 + 0.0012 * 0.0012).sqrt();
    assert!(close(d, 0.0015));
    assert_eq!(
        pursuit(&obs(vec![[0.0009, 0.0012, 1.0, 1.0]])),
        (0.0009 / d, 0.0012 / d),
        "0.0015 away: chase"
    );
}
