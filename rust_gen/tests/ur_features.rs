//! Spec section 4: the 150 features on hand-computed positions, quirks included.

use rust_gen::ur::features::{features, NUM_FEATURES};
use rust_gen::ur::rules::{Position, START};

const S: i8 = START;
const F: i8 = 20;

/// Features of a position, with the legal-move count taken from the rules.
fn of(p1: [i8; 7], p2: [i8; 7], player: usize, roll: u8) -> [f32; NUM_FEATURES] {
    let pos = Position::from_squares([p1, p2]).expect("valid");
    features(
        &pos,
        player,
        roll,
        pos.legal_moves(player, roll).count_ones(),
    )
}

/// Compares against a sparse expectation: listed indices must match, all others must be 0.
fn check(actual: &[f32; NUM_FEATURES], expected: &[(usize, f32)]) {
    let mut want = [0.0f32; NUM_FEATURES];
    for &(i, v) in expected {
        want[i] = v;
    }
    for i in 0..NUM_FEATURES {
        assert!(
            (actual[i] - want[i]).abs() < 1e-6,
            "feature {i}: got {}, expected {}",
            actual[i],
            want[i]
        );
    }
}

fn dense(start: usize, values: &[f32]) -> Vec<(usize, f32)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (start + i, v))
        .collect()
}

#[test]
fn initial_position_hand_check_from_the_spec() {
    let f = of([S; 7], [S; 7], 0, 2);
    let mut want = dense(0, &[-1.0; 14]);
    want.extend([(46, 1.0), (47, 0.5), (48, 1.0)]);
    check(&f, &want);
}

#[test]
fn capture_available_finished_pieces_and_the_on_quirks() {
    // P1: square 0 (rosette), 5, finished. P2: 7 (rosette), 17, two finished. P2 rolls 3:
    // 7 -> 10 and 17 (track 2) -> 5 capturing; entering is blocked by its own piece on 17.
    let f = of([0, 5, F, S, S, S, S], [7, 17, F, F, S, S, S], 1, 3);
    let mut want = dense(
        0,
        &[
            0.0, 0.25, 1.0, -1.0, -1.0, -1.0, -1.0, 0.35, 0.85, 1.0, 1.0, -1.0, -1.0, -1.0,
        ],
    );
    want.extend([(14, 1.0), (19, 1.0), (21, -1.0), (31, -1.0), (35, 0.0)]);
    want.extend(dense(
        36,
        &[
            2.0,
            2.0,
            1.0,
            2.0,
            4.0,
            4.5,
            1.0,
            1.0,
            1.0,
            1.0,
            -1.0,
            0.75,
            2.0 / 7.0,
        ],
    ));
    // 49-52, 59-60: on(k) pieces not on a rosette, finished pieces counted.
    want.extend(dense(
        49,
        &[
            2.0,
            3.0,
            2.0,
            3.0,
            22.0 / 42.0,
            37.0 / 56.0,
            20.0 / 7.0,
            19.0 / 7.0,
            3.0 / 7.0,
            4.0 / 7.0,
        ],
    ));
    want.extend(dense(
        59,
        &[2.0, 3.0, 1.0 / 7.0, 1.0 / 7.0, 1.0 / 7.0, 1.0 / 7.0],
    ));
    // 65/66: close pairs (raw squares, finished = 20); 67/68: pressure incl. finished pairs.
    want.extend(dense(
        65,
        &[
            0.0,
            0.5,
            (1.0 / 3.0 + 0.25 + 2.0) / 3.0,
            (1.0 / 3.0 + 0.25 + 2.0) / 4.0,
        ],
    ));
    want.extend(dense(
        69,
        &[
            3.0 / 7.0,
            3.5 / 7.0,
            1.0 / 7.0,
            2.0 / 7.0,
            2.0 / 7.0,
            3.0 / 7.0,
            -1.0 / 7.0,
            8.0 / 98.0,
            9.0 / 98.0,
        ],
    ));
    check(&f, &want);
}

#[test]
fn clamping_of_the_mean_track_position_and_a_close_pair() {
    // P1 on squares 13 (track 13) and 12 (track 12): mean track 12.5 is clamped to 10.
    let f = of([13, 12, S, S, S, S, S], [S; 7], 0, 1);
    let mut want = dense(
        0,
        &[
            0.65, 0.6, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0,
        ],
    );
    want.extend([
        (26, 1.0),
        (27, 1.0),
        (35, 1.0),
        (36, 2.0),
        (40, 10.0),
        (42, 1.0),
        (46, 1.0),
        (47, 0.25),
    ]);
    want.extend([
        (48, 6.0 / 7.0),
        (49, 1.0),
        (51, 1.0),
        (53, 25.0 / 28.0),
        (55, 3.0 / 7.0),
        (57, 2.0 / 7.0),
    ]);
    want.extend([
        (59, 1.0),
        (61, 1.0 / 7.0),
        (65, 1.0),
        (69, 2.5 / 7.0),
        (73, 1.0 / 7.0),
        (76, 25.0 / 98.0),
    ]);
    check(&f, &want);
}

#[test]
fn nearly_finished_side_against_one_runner() {
    // P1: six finished, one at start; P2 on square 4. P1 rolls 4: only the start piece moves.
    let f = of([F, F, F, F, F, F, S], [4, S, S, S, S, S, S], 0, 4);
    let mut want = dense(
        0,
        &[
            1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 0.2, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0,
        ],
    );
    want.extend([
        (18, -1.0),
        (37, 1.0),
        (38, 6.0),
        (41, 4.0),
        (45, 1.0),
        (46, 1.0),
        (47, 1.0),
        (48, 1.0 / 7.0),
    ]);
    want.extend(dense(
        49,
        &[
            6.0,
            1.0,
            6.0,
            1.0,
            1.0,
            4.0 / 14.0,
            0.0,
            10.0 / 7.0,
            6.0 / 7.0,
            1.0 / 7.0,
            6.0,
            1.0,
        ],
    ));
    want.extend([
        (64, 1.0 / 7.0),
        (65, 1.0),
        (69, 3.0 / 7.0),
        (70, 0.5 / 7.0),
        (71, 6.0 / 7.0),
    ]);
    want.extend([
        (73, 6.0 / 7.0),
        (74, 0.5 / 7.0),
        (75, 6.0 / 7.0),
        (77, 4.0 / 98.0),
    ]);
    check(&f, &want);
}

#[test]
fn features_78_to_149_and_cell_34_stay_zero_in_real_games() {
    let mut rng = rust_gen::core::Rng::new(7);
    let record = rust_gen::ur::game::play_game(0, &mut rng, 1, 0.5, None);
    assert!(!record.samples.is_empty());
    for s in &record.samples {
        assert!(s.features[78..].iter().all(|&v| v == 0.0));
        assert_eq!(s.features[34], 0.0);
        assert!(s.features.iter().all(|v| (-10.0..=10.0).contains(v)));
    }
}
