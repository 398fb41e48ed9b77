//! Rules of the Royal Game of Ur (docs/ur.md, section 1).
//!
//! A piece is stored by its *track position* for its owner: -1 at start, 0..13 on the board,
//! 14 finished. Squares (the engine's absolute cell numbers) are derived through `TRACKS`.
//! The shared squares 4..11 have the same track position for both players, which makes
//! captures a bit test.

pub const PIECES: usize = 7;
pub const START: i8 = -1;
pub const FINISHED: i8 = 14;
/// Square number the old engine gives a finished piece.
pub const FINISHED_SQUARE: i8 = 20;

/// Square index by track position, per player.
pub const TRACKS: [[i8; 14]; 2] = [
    [3, 2, 1, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
    [19, 18, 17, 16, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15],
];
/// Rosette squares (absolute).
pub const ROSETTE_SQUARES: [i8; 5] = [0, 7, 13, 15, 16];
/// Track positions that are rosettes, for both players.
pub const ROSETTE_TRACK_MASK: u16 = (1 << 3) | (1 << 7) | (1 << 13);
/// Track positions 4..11: the shared squares, the same track position for both players.
pub const SHARED_MASK: u16 = 0b0000_1111_1111_0000;
/// The only shared rosette, as a track position.
pub const SHARED_ROSETTE: i8 = 7;
/// Dice: four binary dice; weight of rolls 0..4 out of 16.
pub const ROLL_WEIGHTS: [i64; 5] = [1, 4, 6, 4, 1];
pub const ROLL_TOTAL: i64 = 16;

pub fn is_rosette_square(square: i8) -> bool {
    ROSETTE_SQUARES.contains(&square)
}

/// Track position of an absolute square for `player`, if that square is on its track.
pub fn track_of_square(player: usize, square: i8) -> Option<i8> {
    TRACKS[player]
        .iter()
        .position(|&s| s == square)
        .map(|t| t as i8)
}

/// A set of piece indices 0..6, as bits.
pub type MoveMask = u8;

/// The pieces of both players (P1 = 0, P2 = 1). Whose turn it is lives outside, in the game
/// or search state, because the same position is looked at with different movers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Position {
    track: [[i8; PIECES]; 2],
    /// Bit t set when the player has a piece at track position t (0..13).
    occupied: [u16; 2],
}

impl Position {
    pub fn initial() -> Self {
        Position {
            track: [[START; PIECES]; 2],
            occupied: [0, 0],
        }
    }

    /// Builds a position from track positions, checking that it is one the rules can reach
    /// (values in -1..14, no two pieces on one square).
    pub fn from_track(track: [[i8; PIECES]; 2]) -> Result<Self, String> {
        let mut occupied = [0u16; 2];
        let mut squares_taken = 0u32;
        for (player, pieces) in track.iter().enumerate() {
            for (i, &t) in pieces.iter().enumerate() {
                if !(START..=FINISHED).contains(&t) {
                    return Err(format!(
                        "player {player} piece {i}: track position {t} is not in -1..14"
                    ));
                }
                if (0..FINISHED).contains(&t) {
                    let square = TRACKS[player][t as usize];
                    if squares_taken & (1 << square) != 0 {
                        return Err(format!("square {square} holds two pieces"));
                    }
                    squares_taken |= 1 << square;
                    occupied[player] |= 1 << t;
                }
            }
        }
        Ok(Position { track, occupied })
    }

    /// Builds a position from absolute squares (-1 start, 0..19 board, 20 finished).
    pub fn from_squares(squares: [[i8; PIECES]; 2]) -> Result<Self, String> {
        let mut track = [[START; PIECES]; 2];
        for player in 0..2 {
            for i in 0..PIECES {
                track[player][i] = match squares[player][i] {
                    START => START,
                    FINISHED_SQUARE => FINISHED,
                    s => track_of_square(player, s).ok_or_else(|| {
                        format!("player {player} piece {i}: square {s} is not on its track")
                    })?,
                };
            }
        }
        Position::from_track(track)
    }

    #[inline]
    pub fn track(&self, player: usize, piece: usize) -> i8 {
        self.track[player][piece]
    }

    #[inline]
    pub fn pieces(&self, player: usize) -> &[i8; PIECES] {
        &self.track[player]
    }

    /// Absolute square of a piece: -1 at start, 0..19 on the board, 20 finished.
    #[inline]
    pub fn square(&self, player: usize, piece: usize) -> i8 {
        match self.track[player][piece] {
            START => START,
            FINISHED => FINISHED_SQUARE,
            t => TRACKS[player][t as usize],
        }
    }

    #[inline]
    pub fn occupied(&self, player: usize) -> u16 {
        self.occupied[player]
    }

    #[inline]
    pub fn finished_count(&self, player: usize) -> u32 {
        self.track[player]
            .iter()
            .filter(|&&t| t == FINISHED)
            .count() as u32
    }

    /// The player who has borne off all seven pieces, if any.
    #[inline]
    pub fn winner(&self) -> Option<usize> {
        (0..2).find(|&p| self.track[p].iter().all(|&t| t == FINISHED))
    }

    #[inline]
    pub fn is_legal(&self, player: usize, piece: usize, roll: u8) -> bool {
        let t = self.track[player][piece];
        if roll == 0 || t == FINISHED {
            return false;
        }
        let q = t + roll as i8;
        if q > FINISHED {
            return false;
        }
        if q == FINISHED {
            return true;
        }
        if self.occupied[player] & (1 << q) != 0 {
            return false;
        }
        // Only shared squares (track 4..11) can hold an opponent piece.
        q != SHARED_ROSETTE || self.occupied[1 - player] & (1 << q) == 0
    }

    /// Legal moves as a bit set of piece indices (empty on roll 0 or when blocked).
    #[inline]
    pub fn legal_moves(&self, player: usize, roll: u8) -> MoveMask {
        let mut mask = 0;
        for piece in 0..PIECES {
            if self.is_legal(player, piece, roll) {
                mask |= 1 << piece;
            }
        }
        mask
    }

    /// Legal moves with pieces that stand on the same track position kept once (the lowest
    /// index). Pieces are interchangeable for the value, so the search looks at one of each.
    #[inline]
    pub fn distinct_moves(&self, player: usize, roll: u8) -> MoveMask {
        let legal = self.legal_moves(player, roll);
        let mut seen = 0u32; // bit t + 1 for track position t in -1..13
        let mut mask = 0;
        for piece in 0..PIECES {
            if legal & (1 << piece) != 0 {
                let bit = 1u32 << (self.track[player][piece] + 1);
                if seen & bit == 0 {
                    seen |= bit;
                    mask |= 1 << piece;
                }
            }
        }
        mask
    }

    /// Plays a legal move; returns the new position and whether the mover rolls again
    /// (it landed on a rosette). The caller guarantees legality.
    #[inline]
    pub fn apply(&self, player: usize, piece: usize, roll: u8) -> (Position, bool) {
        debug_assert!(self.is_legal(player, piece, roll));
        let mut next = *self;
        let from = self.track[player][piece];
        let to = from + roll as i8;
        if from >= 0 {
            next.occupied[player] &= !(1 << from);
        }
        next.track[player][piece] = to;
        if to == FINISHED {
            return (next, false);
        }
        next.occupied[player] |= 1 << to;
        let opponent = 1 - player;
        if SHARED_MASK & (1 << to) != 0 && next.occupied[opponent] & (1 << to) != 0 {
            // Legal moves only land on an opponent piece on a shared, non-rosette square.
            next.occupied[opponent] &= !(1 << to);
            for t in next.track[opponent].iter_mut() {
                if *t == to {
                    *t = START;
                }
            }
        }
        (next, ROSETTE_TRACK_MASK & (1 << to) != 0)
    }
}

/// Iterates the piece indices of a mask in increasing order.
#[inline]
pub fn pieces_of(mask: MoveMask) -> impl Iterator<Item = usize> {
    (0..PIECES).filter(move |i| mask & (1 << i) != 0)
}
