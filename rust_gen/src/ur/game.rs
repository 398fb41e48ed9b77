//! Self-play with the teacher: one game in, its training samples out (spec section 5).

use super::dice::Dice;
use super::features::{features, NUM_FEATURES};
use super::rules::{pieces_of, MoveMask, Position, PIECES};
use super::search::{to_unit, Searcher};
use super::solve::{solver_state, Solution};
use crate::core::Rng;

/// Decisions (turns, passes included) after which a game is recorded as unfinished.
pub const PLY_CAP: u32 = 1000;

/// One training sample, taken before the move.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub features: [f32; NUM_FEATURES],
    pub value: f32,
    pub best_piece: u8,
    pub legal: MoveMask,
    pub move_values: [f32; PIECES],
    pub game: u32,
    pub ply: u16,
}

#[derive(Clone, Debug)]
pub struct GameRecord {
    pub samples: Vec<Sample>,
    /// The winner (0 = P1, 1 = P2), or None when the ply cap ended the game.
    pub winner: Option<usize>,
    pub nodes: u64,
}

/// Plays `piece` (or passes when `piece` is None: roll 0 or no legal move) and returns the
/// position and the player who rolls next: the mover again after a rosette, else the opponent.
#[inline]
pub fn advance(pos: &Position, player: usize, roll: u8, piece: Option<usize>) -> (Position, usize) {
    match piece {
        None => (*pos, 1 - player),
        Some(piece) => {
            let (next, again) = pos.apply(player, piece, roll);
            (next, if again { player } else { 1 - player })
        }
    }
}

/// A random legal piece from a mask.
pub fn random_piece(rng: &mut Rng, mask: MoveMask) -> usize {
    let k = rng.below(mask.count_ones());
    pieces_of(mask)
        .nth(k as usize)
        .expect("k < number of legal moves")
}

/// The win probability, for `player`, of playing `piece` with `roll`, by the solved game.
pub fn move_win_probability(
    table: &Solution,
    pos: &Position,
    player: usize,
    roll: u8,
    piece: usize,
) -> f64 {
    let (next, again) = pos.apply(player, piece, roll);
    if next.winner() == Some(player) {
        1.0
    } else if again {
        table.value(solver_state(table, &next, player))
    } else {
        1.0 - table.value(solver_state(table, &next, 1 - player))
    }
}

/// The win probability a move gives away against perfect play: the best legal move's minus
/// this one's (0 for a best move).
pub fn decision_loss(
    table: &Solution,
    pos: &Position,
    player: usize,
    roll: u8,
    legal: MoveMask,
    piece: usize,
) -> f64 {
    let best = pieces_of(legal)
        .map(|p| move_win_probability(table, pos, player, roll, p))
        .fold(f64::NEG_INFINITY, f64::max);
    best - move_win_probability(table, pos, player, roll, piece)
}

/// What the perfect teacher says about a decision, from the solved game's table: the decision's
/// value, the first best piece and every legal piece's value, each as the win probability p of
/// the player it is for mapped to the value contract (P2-positive in [-1, 1]: 2p - 1 for P2,
/// 1 - 2p for P1).
pub fn perfect_analysis(
    table: &Solution,
    pos: &Position,
    player: usize,
    roll: u8,
    legal: MoveMask,
) -> (f32, usize, [f32; PIECES]) {
    let p2_positive = |p_mover: f64| {
        (if player == 1 {
            2.0 * p_mover - 1.0
        } else {
            1.0 - 2.0 * p_mover
        }) as f32
    };
    let mut move_values = [0.0f32; PIECES];
    let (mut best, mut best_p) = (usize::MAX, f64::NEG_INFINITY);
    for piece in pieces_of(legal) {
        let p = move_win_probability(table, pos, player, roll, piece);
        move_values[piece] = p2_positive(p);
        if p > best_p {
            (best, best_p) = (piece, p);
        }
    }
    (p2_positive(best_p), best, move_values)
}

/// Plays one game, P1 first, the teacher choosing every move except that with probability
/// `exploration` a uniform random legal move is played instead. The teacher is the search at
/// `depth`, or perfect play when the solved game's `table` is given.
pub fn play_game(
    game: u32,
    rng: &mut Rng,
    depth: u32,
    exploration: f64,
    table: Option<&Solution>,
) -> GameRecord {
    let mut searcher = Searcher::new();
    let mut pos = Position::initial();
    let mut player = 0usize;
    let mut samples = Vec::with_capacity(192);
    let mut ply = 0u32;
    while pos.winner().is_none() && ply < PLY_CAP {
        let roll = rng.roll();
        let legal = pos.legal_moves(player, roll);
        if legal == 0 {
            (pos, player) = advance(&pos, player, roll, None);
            ply += 1;
            continue;
        }
        let (value, best_piece, move_values) = match table {
            Some(table) => perfect_analysis(table, &pos, player, roll, legal),
            None => {
                let analysis = searcher.analyze(&pos, player, roll, depth);
                let mut move_values = [0.0f32; PIECES];
                for piece in pieces_of(legal) {
                    move_values[piece] = to_unit(analysis.move_values[piece]);
                }
                (to_unit(analysis.value), analysis.best_piece, move_values)
            }
        };
        samples.push(Sample {
            features: features(&pos, player, roll, legal.count_ones()),
            value,
            best_piece: best_piece as u8,
            legal,
            move_values,
            game,
            ply: ply as u16,
        });
        // The exploration draw happens on every decision, so the stream stays aligned.
        let explore = rng.next_f64() < exploration;
        let piece = if explore {
            random_piece(rng, legal)
        } else {
            best_piece
        };
        (pos, player) = advance(&pos, player, roll, Some(piece));
        ply += 1;
    }
    GameRecord {
        samples,
        winner: pos.winner(),
        nodes: searcher.nodes,
    }
}
