//! Spec section 3: the pruned search equals a slow, obviously-correct expectiminimax.

use rust_gen::core::Rng;
use rust_gen::ur::dice::Dice;
use rust_gen::ur::eval::evaluate;
use rust_gen::ur::game::{advance, random_piece};
use rust_gen::ur::rules::{Position, PIECES};
use rust_gen::ur::search::{Searcher, FULL_WINDOW, SCALE};

const P: [f64; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// The definition, literally: no pruning, no table, every legal piece tried.
/// (Every value is a dyadic rational with a small numerator, so f64 holds it exactly.)
fn reference_chance(pos: &Position, player: usize, depth: u32) -> f64 {
    if depth == 0 || pos.winner().is_some() {
        return evaluate(pos) as f64;
    }
    (0..5u8)
        .map(|roll| P[roll as usize] * reference_decision(pos, player, roll, depth))
        .sum()
}

fn reference_decision(pos: &Position, player: usize, roll: u8, depth: u32) -> f64 {
    let values: Vec<f64> = (0..PIECES)
        .filter(|&i| pos.is_legal(player, i, roll))
        .map(|i| {
            let (child, next) = advance(pos, player, roll, Some(i));
            reference_chance(&child, next, depth - 1)
        })
        .collect();
    if values.is_empty() {
        let (same, next) = advance(pos, player, roll, None);
        return reference_chance(&same, next, depth - 1);
    }
    let pick = if player == 1 { f64::max } else { f64::min };
    values.into_iter().reduce(pick).expect("non-empty")
}

/// Decision states (position, mover, roll with a legal move) from random games, spread over
/// the whole game.
fn random_decisions(count: usize, seed: u64) -> Vec<(Position, usize, u8)> {
    let mut rng = Rng::new(seed);
    let mut found = Vec::new();
    while found.len() < count {
        let (mut pos, mut player) = (Position::initial(), 0usize);
        while pos.winner().is_none() && found.len() < count {
            let roll = rng.roll();
            let legal = pos.legal_moves(player, roll);
            if legal == 0 {
                (pos, player) = advance(&pos, player, roll, None);
                continue;
            }
            if rng.below(4) == 0 {
                found.push((pos, player, roll));
            }
            (pos, player) = advance(&pos, player, roll, Some(random_piece(&mut rng, legal)));
        }
    }
    found
}

fn unscale(v: i64) -> f64 {
    v as f64 / SCALE as f64
}

#[test]
fn pruned_search_equals_the_reference_on_random_positions_depths_1_to_3() {
    let positions = random_decisions(240, 11);
    let mut searcher = Searcher::new();
    for depth in 1..=3 {
        for (n, (pos, player, roll)) in positions.iter().enumerate() {
            let analysis = searcher.analyze(pos, *player, *roll, depth);
            assert_eq!(
                unscale(analysis.value),
                reference_decision(pos, *player, *roll, depth),
                "position {n} depth {depth}: {pos:?}"
            );
            for piece in 0..PIECES {
                if pos.is_legal(*player, piece, *roll) {
                    let (child, next) = advance(pos, *player, *roll, Some(piece));
                    let want = reference_chance(&child, next, depth - 1);
                    assert_eq!(
                        unscale(analysis.move_values[piece]),
                        want,
                        "position {n} depth {depth} piece {piece}"
                    );
                } else {
                    assert_eq!(analysis.move_values[piece], 0);
                }
            }
            let best = analysis.move_values[analysis.best_piece];
            assert_eq!(best, analysis.value, "the chosen move has the node's value");
        }
    }
}

#[test]
fn pruned_search_equals_the_reference_at_depth_4() {
    let mut searcher = Searcher::new();
    for (pos, player, roll) in random_decisions(24, 5) {
        let analysis = searcher.analyze(&pos, player, roll, 4);
        assert_eq!(
            unscale(analysis.value),
            reference_decision(&pos, player, roll, 4)
        );
    }
}

#[test]
fn windowed_chance_values_keep_the_fail_soft_contract() {
    // With a window (a, b): r <= a bounds the truth from above, r >= b from below, else exact.
    let mut searcher = Searcher::new();
    let mut rng = Rng::new(3);
    for (pos, player, _) in random_decisions(150, 9) {
        let depth = 1 + rng.below(3);
        let exact = searcher.chance(&pos, player, depth, FULL_WINDOW.0, FULL_WINDOW.1);
        let centre = exact + (rng.below(2001) as i64 - 1000) * SCALE / 4;
        let half = (1 + rng.below(400) as i64) * SCALE / 4;
        let (a, b) = (centre - half, centre + half);
        let r = searcher.chance(&pos, player, depth, a, b);
        if r <= a {
            assert!(exact <= r, "fail low must bound from above");
        } else if r >= b {
            assert!(exact >= r, "fail high must bound from below");
        } else {
            assert_eq!(r, exact);
        }
    }
}

#[test]
fn the_teacher_prefers_winning_and_the_sign_is_p2_positive() {
    // P2 can bear off its last piece with a 1: the teacher takes it and the value is +1.
    let pos = Position::from_squares([[-1; 7], [20, 20, 20, 20, 20, 20, 15]]).expect("valid");
    let a = Searcher::new().analyze(&pos, 1, 1, 2);
    assert_eq!(a.best_piece, 6);
    assert_eq!(unscale(a.value), 10_000.0);
}
