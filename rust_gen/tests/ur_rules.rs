//! Spec section 1 (rules) and section 2 (static evaluation) on hand-built positions.

use rust_gen::ur::eval::evaluate;
use rust_gen::ur::game::advance;
use rust_gen::ur::rules::{pieces_of, Position, FINISHED, START};

const S: i8 = START;
const F: i8 = 20; // the square of a finished piece

fn squares(p1: [i8; 7], p2: [i8; 7]) -> Position {
    Position::from_squares([p1, p2]).expect("a valid position")
}

fn legal(pos: &Position, player: usize, roll: u8) -> Vec<usize> {
    pieces_of(pos.legal_moves(player, roll)).collect()
}

#[test]
fn entering_every_start_piece_is_a_separate_move() {
    let pos = Position::initial();
    assert_eq!(legal(&pos, 0, 2), vec![0, 1, 2, 3, 4, 5, 6]);
    let (next, again) = pos.apply(0, 3, 2);
    assert_eq!(next.square(0, 3), 2, "P1 track position 1 is square 2");
    assert!(!again);
    let (next, _) = pos.apply(1, 0, 1);
    assert_eq!(next.square(1, 0), 19, "P2 enters on square 19");
    // Pieces keep their index: moving piece 3 leaves the others at start.
    assert!((0..7)
        .filter(|&i| i != 3)
        .all(|i| next.track(0, i) == START));
}

#[test]
fn entering_on_roll_four_lands_on_a_rosette_and_rolls_again() {
    let (next, again) = Position::initial().apply(0, 0, 4);
    assert_eq!(next.square(0, 0), 0);
    assert!(again);
    let (next, again) = Position::initial().apply(1, 0, 4);
    assert_eq!(next.square(1, 0), 16);
    assert!(again);
}

#[test]
fn capture_sends_the_opponent_piece_home() {
    // P1 on square 4, P2 on square 6; P1 rolls 2.
    let pos = squares([4, S, S, S, S, S, S], [6, S, S, S, S, S, S]);
    assert_eq!(legal(&pos, 0, 2), vec![0, 1, 2, 3, 4, 5, 6]);
    let (next, again) = pos.apply(0, 0, 2);
    assert_eq!(next.square(0, 0), 6);
    assert_eq!(next.square(1, 0), START);
    assert!(!again);
}

#[test]
fn private_squares_never_capture() {
    // P1 track 2 is square 1, P2 track 2 is square 17: different squares, no capture.
    let pos = squares([2, S, S, S, S, S, S], [18, S, S, S, S, S, S]);
    let (next, _) = pos.apply(0, 0, 1);
    assert_eq!(next.square(0, 0), 1);
    assert_eq!(next.square(1, 0), 18, "the P2 piece must stay");
}

#[test]
fn the_shared_rosette_blocks_a_capture() {
    let pos = squares([5, S, S, S, S, S, S], [7, S, S, S, S, S, S]);
    assert!(
        !pos.is_legal(0, 0, 2),
        "square 7 with an opponent is a safe rosette"
    );
    assert!(pos.is_legal(0, 0, 3), "jumping past it is fine");
}

#[test]
fn own_piece_blocks() {
    let pos = squares([2, 0, S, S, S, S, S], [S; 7]);
    assert!(!pos.is_legal(0, 0, 2), "square 0 holds an own piece");
    assert!(
        !pos.is_legal(0, 2, 4),
        "entering onto square 0 is blocked too"
    );
    assert!(pos.is_legal(0, 2, 3));
}

#[test]
fn extra_turn_on_rosettes_7_and_13_but_not_when_bearing_off() {
    let pos = squares([5, 11, 12, S, S, S, S], [S; 7]);
    let (_, again) = pos.apply(0, 0, 2);
    assert!(again, "landing on 7");
    let (_, again) = pos.apply(0, 1, 2);
    assert!(again, "landing on 13 (track 13)");
    let (next, again) = pos.apply(0, 2, 2);
    assert!(!again, "bearing off gives no extra turn");
    assert_eq!(next.track(0, 2), FINISHED);
}

#[test]
fn bear_off_needs_the_exact_roll() {
    let pos = squares([12, S, S, S, S, S, S], [S; 7]); // track 12
    assert!(pos.is_legal(0, 0, 2), "12 + 2 = 14 bears off");
    assert!(!pos.is_legal(0, 0, 3), "overshoot");
    assert!(!pos.is_legal(0, 0, 4), "overshoot");
    let pos = squares([S; 7], [14, S, S, S, S, S, S]); // P2 track 12
    assert!(pos.is_legal(1, 0, 2));
    assert!(!pos.is_legal(1, 0, 3));
}

#[test]
fn finished_pieces_never_move() {
    let pos = squares([F, S, S, S, S, S, S], [S; 7]);
    assert!(!pos.is_legal(0, 0, 1));
}

#[test]
fn roll_zero_and_no_legal_move_pass_to_the_opponent() {
    let pos = Position::initial();
    assert_eq!(pos.legal_moves(0, 0), 0);
    assert_eq!(advance(&pos, 0, 0, None), (pos, 1));
    // P1: six finished, one on track 13 (square 13): any roll but 1 has no legal move.
    let pos = squares([F, F, F, F, F, F, 13], [S; 7]);
    assert_eq!(pos.legal_moves(0, 3), 0);
    let (same, next) = advance(&pos, 0, 3, None);
    assert_eq!(
        (same, next),
        (pos, 1),
        "the turn passes, the position stays"
    );
}

#[test]
fn the_game_ends_when_seven_are_off() {
    let pos = squares([F, F, F, F, F, F, 13], [S; 7]);
    assert_eq!(pos.winner(), None);
    let (next, player) = advance(&pos, 0, 1, Some(6));
    assert_eq!(next.winner(), Some(0));
    assert_eq!(player, 1);
    assert_eq!(evaluate(&next), -10_000);
    let p2 = squares([S; 7], [F; 7]);
    assert_eq!(p2.winner(), Some(1));
    assert_eq!(evaluate(&p2), 10_000);
}

#[test]
fn positions_with_two_pieces_on_a_square_are_rejected() {
    assert!(Position::from_squares([[5, 5, S, S, S, S, S], [S; 7]]).is_err());
    assert!(Position::from_squares([[5, S, S, S, S, S, S], [5, S, S, S, S, S, S]]).is_err());
    assert!(
        Position::from_squares([[16, S, S, S, S, S, S], [S; 7]]).is_err(),
        "16 is not on P1's track"
    );
}

#[test]
fn static_evaluation_on_hand_computed_positions() {
    assert_eq!(evaluate(&Position::initial()), 0);
    // P1 on square 0 (track 3, rosette): -35 board, (0-4)*15/10 = -6, -25 safety, -40 control.
    assert_eq!(evaluate(&squares([0, S, S, S, S, S, S], [S; 7])), -106);
    // Division truncates toward zero: +15/10 = 1 and -15/10 = -1.
    assert_eq!(evaluate(&squares([S; 7], [19, S, S, S, S, S, S])), 36);
    assert_eq!(evaluate(&squares([3, S, S, S, S, S, S], [S; 7])), -36);
    // P1: 2 finished, square 12 (track 12). P2: 1 finished, square 7 (rosette), square 5.
    // -1000 + 35 + (14-13)*15/10 + (39 - 10) + 40 = -895
    let pos = squares([F, F, 12, S, S, S, S], [F, 7, 5, S, S, S, S]);
    assert_eq!(evaluate(&pos), -895);
}
