//! A small, fully specified random stream (SplitMix64), so shard bytes never depend on a
//! crate's version or on which thread played an episode. It knows no game: Ur's dice live in
//! `ur::dice`.

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

    /// The stream of one episode (an Ur game, a predator episode, a match game): derived from
    /// (seed, stream, episode index) only, so it does not matter which thread plays it. The
    /// stream is the shard index when generating, or a constant that keeps two uses apart.
    pub fn for_episode(seed: u64, stream: u64, episode: u64) -> Self {
        Rng::new(
            mix(mix(seed ^ GOLDEN).wrapping_add(stream)).wrapping_add(episode.wrapping_mul(GOLDEN)),
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

    /// Uniform in 0..n (n > 0), with a bias below n / 2^32.
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * n as u64) >> 32) as u32
    }
}
