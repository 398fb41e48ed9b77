//! A small, fully specified random stream (SplitMix64), so shard bytes never depend on a
//! crate's version or on which thread played a game.

#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: mix(seed) }
    }

    /// The stream of one game: derived from (seed, shard index, game index) only.
    pub fn for_game(seed: u64, shard: u64, game: u64) -> Self {
        Rng::new(
            mix(mix(seed ^ GOLDEN).wrapping_add(shard)).wrapping_add(game.wrapping_mul(GOLDEN)),
        )
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (n > 0), without modulo bias worth speaking of for n <= 7.
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * n as u64) >> 32) as u32
    }

    /// Four binary dice: the number of ones.
    pub fn roll(&mut self) -> u8 {
        (self.next_u64() & 0xf).count_ones() as u8
    }
}
