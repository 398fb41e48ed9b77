//! Ur's dice, drawn from the generic random stream.

use crate::core::Rng;

pub trait Dice {
    /// Four binary dice: the number of ones (0..=4, weights 1, 4, 6, 4, 1 out of 16).
    fn roll(&mut self) -> u8;
}

impl Dice for Rng {
    fn roll(&mut self) -> u8 {
        (self.next_u64() & 0xf).count_ones() as u8
    }
}
