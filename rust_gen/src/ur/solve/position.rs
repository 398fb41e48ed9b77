//! The solver's positions (a side's squares and pieces borne off, seen by the player to
//! move), their legal moves by the rules of docs/ur.md section 1, and the dense numbering of
//! every position that the value table uses.

use crate::ur::rules::{ROSETTE_TRACK_MASK, SHARED_MASK, SHARED_ROSETTE};

/// Track positions of the squares no opponent can enter, in the order of their index bits.
const PRIVATE: [u8; 6] = [0, 1, 2, 3, 12, 13];
/// The shared squares' track positions (4..11), in the order of their base-3 digits.
const SHARED: [u8; 8] = [4, 5, 6, 7, 8, 9, 10, 11];
const SHARED_CONFIGS: usize = 6561; // 3^8
/// Track position of a piece borne off.
const OFF: u8 = 14;

/// One side: the track positions (0..13) it occupies, as bits, and its pieces borne off.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Side {
    pub board: u16,
    pub off: u8,
}

/// A position seen by the player to move.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct State {
    pub me: Side,
    pub them: Side,
}

impl State {
    pub fn start() -> State {
        let empty = Side { board: 0, off: 0 };
        State {
            me: empty,
            them: empty,
        }
    }

    /// The same position with the other player to move.
    pub fn swap(self) -> State {
        State {
            me: self.them,
            them: self.me,
        }
    }

    /// Pips travelled by both sides: a piece on track position t counts t + 1, one borne off 15.
    pub(super) fn progress(self) -> u32 {
        let side = |s: Side| {
            (0..14)
                .filter(|t| s.board & (1 << t) != 0)
                .map(|t| t + 1)
                .sum::<u32>()
                + 15 * s.off as u32
        };
        side(self.me) + side(self.them)
    }

    pub(super) fn pack(self) -> u64 {
        self.me.board as u64
            | (self.me.off as u64) << 14
            | (self.them.board as u64) << 17
            | (self.them.off as u64) << 31
    }

    pub(super) fn unpack(bits: u64) -> State {
        State {
            me: Side {
                board: (bits & 0x3fff) as u16,
                off: ((bits >> 14) & 7) as u8,
            },
            them: Side {
                board: ((bits >> 17) & 0x3fff) as u16,
                off: ((bits >> 31) & 7) as u8,
            },
        }
    }
}

/// What a move leads to.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Outcome {
    /// The mover bore off its last piece.
    Won,
    /// The mover landed on a rosette and moves again in this position.
    Again(State),
    /// The turn passes: this position, seen by the opponent.
    Passes(State),
}

/// The legal moves of the player to move for roll r (1..4), each named by the track position
/// it starts from (-1: a waiting piece), with its outcome: section 1's rules on sets of squares
/// (the tests check them against the game's own rules, piece by piece).
pub fn moves(s: State, pieces: u8, roll: u8) -> impl Iterator<Item = (i8, Outcome)> {
    let waiting = pieces - s.me.off - s.me.board.count_ones() as u8;
    let sources = (-1i8..14).filter(move |&t| {
        if t < 0 {
            waiting > 0
        } else {
            s.me.board & (1 << t) != 0
        }
    });
    sources.filter_map(move |from| {
        let to = (from + roll as i8) as u8;
        if to > OFF {
            return None;
        }
        let left = if from >= 0 {
            s.me.board & !(1 << from)
        } else {
            s.me.board
        };
        if to == OFF {
            let me = Side {
                board: left,
                off: s.me.off + 1,
            };
            return Some((
                from,
                if me.off == pieces {
                    Outcome::Won
                } else {
                    Outcome::Passes(State {
                        me: s.them,
                        them: me,
                    })
                },
            ));
        }
        let bit = 1u16 << to;
        let theirs_here = SHARED_MASK & bit != 0 && s.them.board & bit != 0;
        if s.me.board & bit != 0 || (theirs_here && to == SHARED_ROSETTE as u8) {
            return None;
        }
        let me = Side {
            board: left | bit,
            off: s.me.off,
        };
        let them = Side {
            board: if theirs_here {
                s.them.board & !bit
            } else {
                s.them.board
            },
            off: s.them.off,
        };
        let next = State { me, them };
        Some((
            from,
            if ROSETTE_TRACK_MASK & bit != 0 {
                Outcome::Again(next)
            } else {
                Outcome::Passes(next.swap())
            },
        ))
    })
}

/// A dense numbering of every position of the game with `pieces` pieces a side in which
/// neither side has borne off all its pieces: layer (my off, their off), then the shared
/// squares as base-3 digits (empty, mine, theirs), then my private squares, then theirs, each a
/// set of 6 ranked by size then value, so that the sets of at most k squares come first.
pub struct Index {
    pub pieces: u8,
    /// First index of each layer (a * pieces + b), and the total at the end.
    layer_start: Vec<u64>,
    /// Offset of each shared configuration within its layer (layer * 6561 + config), and the
    /// number of private sets the opponent may hold there.
    shared_start: Vec<(u64, u64)>,
    /// Per shared configuration: my squares, their squares (bits by track position), counts.
    shared: Vec<(u16, u16, u8, u8)>,
    /// Rank of each 6-bit set of private squares; number of sets of at most k squares.
    rank: [u64; 64],
    at_most: [u64; 7],
}

impl Index {
    pub fn new(pieces: u8) -> Index {
        assert!((1..=7).contains(&pieces), "1 to 7 pieces a side");
        let shared: Vec<(u16, u16, u8, u8)> = (0..SHARED_CONFIGS)
            .map(|mut c| {
                let (mut mine, mut theirs) = (0u16, 0u16);
                for &t in &SHARED {
                    match c % 3 {
                        1 => mine |= 1 << t,
                        2 => theirs |= 1 << t,
                        _ => {}
                    }
                    c /= 3;
                }
                (
                    mine,
                    theirs,
                    mine.count_ones() as u8,
                    theirs.count_ones() as u8,
                )
            })
            .collect();
        let mut sets: Vec<u32> = (0..64).collect();
        sets.sort_by_key(|&m| (m.count_ones(), m));
        let mut rank = [0u64; 64];
        for (r, &m) in sets.iter().enumerate() {
            rank[m as usize] = r as u64;
        }
        let at_most: [u64; 7] = std::array::from_fn(|k| {
            (0..64u32).filter(|m| m.count_ones() as usize <= k).count() as u64
        });
        let mut index = Index {
            pieces,
            layer_start: vec![0],
            shared_start: vec![(0, 0); pieces as usize * pieces as usize * SHARED_CONFIGS],
            shared,
            rank,
            at_most,
        };
        let mut total = 0u64;
        for layer in 0..pieces as usize * pieces as usize {
            let (a, b) = (
                (layer / pieces as usize) as u8,
                (layer % pieces as usize) as u8,
            );
            let mut within = 0u64;
            for c in 0..SHARED_CONFIGS {
                let theirs = index.shared[c].3 as i32;
                let their_sets = index.private_sets(pieces as i32 - b as i32 - theirs);
                index.shared_start[layer * SHARED_CONFIGS + c] = (within, their_sets);
                within += index.count(a, b, c);
            }
            total += within;
            index.layer_start.push(total);
        }
        index
    }

    /// Sets of private squares a side may hold when it has `free` pieces not on shared squares
    /// and not borne off.
    fn private_sets(&self, free: i32) -> u64 {
        if free < 0 {
            0
        } else {
            self.at_most[free.min(6) as usize]
        }
    }

    fn count(&self, a: u8, b: u8, config: usize) -> u64 {
        let (_, _, mine, theirs) = self.shared[config];
        let n = self.pieces as i32;
        self.private_sets(n - a as i32 - mine as i32)
            * self.private_sets(n - b as i32 - theirs as i32)
    }

    pub fn len(&self) -> u64 {
        *self.layer_start.last().expect("at least one layer")
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The positions of layer (a, b), as a range of indices.
    pub fn layer(&self, a: u8, b: u8) -> std::ops::Range<u64> {
        let layer = a as usize * self.pieces as usize + b as usize;
        self.layer_start[layer]..self.layer_start[layer + 1]
    }

    pub fn of(&self, s: State) -> u64 {
        let layer = s.me.off as usize * self.pieces as usize + s.them.off as usize;
        // The shared squares' base-3 number: 1 per square of mine, 2 per square of theirs.
        let shared = |board: u16| SHARED_DIGITS[((board >> 4) & 0xff) as usize];
        let config = (shared(s.me.board) + 2 * shared(s.them.board)) as usize;
        let (start, their_sets) = self.shared_start[layer * SHARED_CONFIGS + config];
        self.layer_start[layer]
            + start
            + self.rank[private_bits(s.me.board)] * their_sets
            + self.rank[private_bits(s.them.board)]
    }

    /// Every position of layer (a, b), in index order.
    pub fn states(&self, a: u8, b: u8) -> impl Iterator<Item = State> + '_ {
        let n = self.pieces as i32;
        let mut by_rank = [0u16; 64];
        for m in 0..64u16 {
            by_rank[self.rank[m as usize] as usize] = board_of_private(m);
        }
        (0..SHARED_CONFIGS).flat_map(move |c| {
            let (mine, theirs, m, t) = self.shared[c];
            let my_sets = self.private_sets(n - a as i32 - m as i32) as usize;
            let their_sets = self.private_sets(n - b as i32 - t as i32) as usize;
            (0..my_sets).flat_map(move |i| {
                (0..their_sets).map(move |j| State {
                    me: Side {
                        board: mine | by_rank[i],
                        off: a,
                    },
                    them: Side {
                        board: theirs | by_rank[j],
                        off: b,
                    },
                })
            })
        })
    }
}

/// The private squares of a board as 6 bits, in the order of `PRIVATE`.
fn private_bits(board: u16) -> usize {
    // PRIVATE is 0, 1, 2, 3, 12, 13.
    (board & 0xf | (board >> 8) & 0x30) as usize
}

/// For each set of shared squares (bit i: track position 4 + i), the sum of 3^i.
const SHARED_DIGITS: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut set = 0;
    while set < 256 {
        let (mut i, mut power) = (0, 1);
        while i < 8 {
            if set & (1 << i) != 0 {
                table[set] += power;
            }
            power *= 3;
            i += 1;
        }
        set += 1;
    }
    table
};

fn board_of_private(bits: u16) -> u16 {
    PRIVATE
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, &t)| 1u16 << t)
        .sum()
}
