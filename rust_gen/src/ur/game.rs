//! Self-play with the teacher: one game in, its training samples out (spec section 5).

use super::dice::Dice;
use super::features::{features, NUM_FEATURES};
use super::rules::{pieces_of, MoveMask, Position, PIECES};
use super::search::{to_unit, Searcher};
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

/// Plays one game, P1 first, the teacher at `depth` choosing every move except that with
/// probability `exploration` a uniform random legal move is played instead.
pub fn play_game(game: u32, rng: &mut Rng, depth: u32, exploration: f64) -> GameRecord {
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
        let analysis = searcher.analyze(&pos, player, roll, depth);
        let mut move_values = [0.0f32; PIECES];
        for piece in pieces_of(legal) {
            move_values[piece] = to_unit(analysis.move_values[piece]);
        }
        samples.push(Sample {
            features: features(&pos, player, roll, legal.count_ones()),
            value: to_unit(analysis.value),
            best_piece: analysis.best_piece as u8,
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
            analysis.best_piece
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
