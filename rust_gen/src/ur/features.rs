//! The 150 input features (docs/ur.md, section 4), quirks included: "on" pieces include
//! finished ones (square 20), and features 49-52 and 59-60 repeat one count.

use super::rules::{is_rosette_square, Position, FINISHED_SQUARE, PIECES, START};

pub const NUM_FEATURES: usize = 150;

/// Per-player facts the table is built from.
struct Side {
    /// Squares of pieces on the board or finished ("on(k)"), 0..20.
    on: [i8; PIECES],
    on_count: usize,
    /// Track positions of pieces on the board (0..13).
    on_track: [i8; PIECES],
    track_count: usize,
    board: usize,
    finished: usize,
    rosettes: usize,
    center: usize,
}

fn side(pos: &Position, player: usize) -> Side {
    let mut s = Side {
        on: [0; PIECES],
        on_count: 0,
        on_track: [0; PIECES],
        track_count: 0,
        board: 0,
        finished: 0,
        rosettes: 0,
        center: 0,
    };
    for piece in 0..PIECES {
        let square = pos.square(player, piece);
        if square == START {
            continue;
        }
        s.on[s.on_count] = square;
        s.on_count += 1;
        if square == FINISHED_SQUARE {
            s.finished += 1;
            continue;
        }
        s.on_track[s.track_count] = pos.track(player, piece);
        s.track_count += 1;
        s.board += 1;
        if is_rosette_square(square) {
            s.rosettes += 1;
        }
        if (4..=11).contains(&square) {
            s.center += 1;
        }
    }
    s
}

impl Side {
    fn on(&self) -> &[i8] {
        &self.on[..self.on_count]
    }
    fn on_track(&self) -> &[i8] {
        &self.on_track[..self.track_count]
    }
    fn mean_track(&self) -> f32 {
        if self.track_count == 0 {
            return 0.0;
        }
        self.on_track().iter().map(|&t| t as f32).sum::<f32>() / self.track_count as f32
    }
    /// Pieces in on(k) that are not on a rosette square (finished pieces count).
    fn off_rosette(&self) -> f32 {
        self.on().iter().filter(|&&s| !is_rosette_square(s)).count() as f32
    }
    fn mean_progress(&self) -> f32 {
        if self.on_count == 0 {
            return 0.0;
        }
        let total: f32 = self
            .on_track()
            .iter()
            .map(|&t| t as f32 / 14.0)
            .sum::<f32>()
            + self.finished as f32;
        total / self.on_count as f32
    }
    fn clustering(&self) -> f32 {
        let on = self.on();
        if on.len() < 2 {
            return 0.0;
        }
        let (mut close, mut pairs) = (0u32, 0u32);
        for i in 0..on.len() {
            for j in i + 1..on.len() {
                pairs += 1;
                if (on[i] - on[j]).abs() <= 3 {
                    close += 1;
                }
            }
        }
        close as f32 / pairs as f32
    }
    fn pressure_on(&self, other: &Side) -> f32 {
        if self.on_count == 0 {
            return 0.0;
        }
        let mut total = 0.0f32;
        for &a in self.on() {
            for &b in other.on() {
                let d = (a - b).abs();
                if d <= 4 {
                    total += 1.0 / (d as f32 + 1.0);
                }
            }
        }
        total / self.on_count as f32
    }
    fn rosette_weight(&self) -> f32 {
        self.on()
            .iter()
            .map(|&s| if is_rosette_square(s) { 2.0 } else { 0.5 })
            .sum::<f32>()
            / 7.0
    }
}

/// Features of the decision state: `player` to move with `roll`, `legal_count` legal moves.
pub fn features(pos: &Position, player: usize, roll: u8, legal_count: u32) -> [f32; NUM_FEATURES] {
    let mut f = [0.0f32; NUM_FEATURES];
    let sides = [side(pos, 0), side(pos, 1)];
    for k in 0..2 {
        for piece in 0..PIECES {
            let square = pos.square(k, piece);
            f[7 * k + piece] = if square == START {
                -1.0
            } else {
                square as f32 / 20.0
            };
            if (0..FINISHED_SQUARE).contains(&square) {
                f[14 + square as usize] = if k == 0 { 1.0 } else { -1.0 };
                if is_rosette_square(square) {
                    f[35] += if k == 0 { 1.0 } else { -1.0 };
                }
            }
        }
    }
    for (k, s) in sides.iter().enumerate() {
        let other = &sides[1 - k];
        let off_rosette = s.off_rosette();
        f[36 + k] = s.board as f32;
        f[38 + k] = s.finished as f32;
        f[40 + k] = s.mean_track();
        f[42 + k] = s.rosettes as f32;
        f[44 + k] = s.center as f32;
        f[49 + k] = off_rosette;
        f[51 + k] = off_rosette;
        f[53 + k] = s.mean_progress();
        f[55 + k] = s.on_track().iter().map(|&t| (14 - t) as f32).sum::<f32>() / 7.0;
        f[57 + k] = s.on_count as f32 / 7.0;
        f[59 + k] = off_rosette;
        f[61 + k] = s.rosettes as f32 / 7.0;
        f[63 + k] = s.center as f32 / 7.0;
        f[65 + k] = s.clustering();
        f[67 + k] = s.pressure_on(other);
        f[69 + k] = s.rosette_weight();
        f[71 + k] = s.finished as f32 / 7.0;
        f[73 + k] = (s.finished as f32 + 0.5 * s.board as f32) / 7.0;
        f[76 + k] = s.on_track().iter().map(|&t| t as f32 / 14.0).sum::<f32>() / 7.0;
    }
    f[46] = if player == 0 { 1.0 } else { -1.0 };
    f[47] = roll as f32 / 4.0;
    f[48] = legal_count as f32 / 7.0;
    f[75] = (sides[0].finished as f32 - sides[1].finished as f32) / 7.0;
    for v in f.iter_mut() {
        *v = v.clamp(-10.0, 10.0);
    }
    f
}
