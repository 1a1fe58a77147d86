//! A small, fast, serializable pseudo-random generator.
//!
//! quantrl owns its generator (xoshiro256++ seeded through SplitMix64) rather than borrowing
//! one from `rand`, so that its state can be written into a checkpoint and read back bit for
//! bit, and so that a seed gives the same stream on every platform and every release.

use serde::{Deserialize, Serialize};

/// SplitMix64 step: used to expand a 64-bit seed into a full generator state and to derive
/// independent seeds for sub-streams (one per environment, per network, per minibatch shuffle).
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derive the seed of sub-stream `index` from a base seed (for example one per environment).
///
/// Different indices give statistically independent streams; the same pair always gives the
/// same seed.
pub fn derive_seed(base: u64, index: u64) -> u64 {
    let mut s = base ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    splitmix64(&mut s);
    splitmix64(&mut s)
}

/// xoshiro256++ generator with a serializable state.
///
/// ```
/// use quantrl_core::Rng;
/// let mut a = Rng::seed_from_u64(7);
/// let mut b = Rng::seed_from_u64(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let u = a.uniform();
/// assert!((0.0..1.0).contains(&u));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is expanded from `seed` by SplitMix64.
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Self { s }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[low, high)`.
    #[inline]
    pub fn uniform_range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Uniform integer in `0..n` (Lemire's method, unbiased). `n` must be positive.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below needs a positive bound");
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Standard normal draw (Box-Muller, one of the pair).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        // 1 - u is in (0, 1], so the log is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// `n` independent generators, stream `i` seeded with [`derive_seed`]`(base, i)`: one per
    /// environment of a vectorized environment.
    pub fn streams(base: u64, n: usize) -> Vec<Rng> {
        (0..n as u64)
            .map(|i| Rng::seed_from_u64(derive_seed(base, i)))
            .collect()
    }

    /// Shuffle a slice in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// Index drawn from unnormalized non-negative weights (e.g. probabilities).
    ///
    /// Falls back to the last index with positive weight when rounding leaves the draw past
    /// the total, so a valid index is always returned when any weight is positive.
    pub fn categorical(&mut self, weights: &[f32]) -> usize {
        let total: f64 = weights.iter().map(|&w| w.max(0.0) as f64).sum();
        let mut target = self.uniform() * total;
        let mut last_positive = 0;
        for (i, &w) in weights.iter().enumerate() {
            let w = w.max(0.0) as f64;
            if w > 0.0 {
                last_positive = i;
                if target < w {
                    return i;
                }
                target -= w;
            }
        }
        last_positive
    }

    /// A new generator for an independent sub-stream, advancing this one.
    pub fn fork(&mut self) -> Rng {
        Rng::seed_from_u64(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_serde_round_trip() {
        let mut a = Rng::seed_from_u64(42);
        for _ in 0..10 {
            a.next_u64();
        }
        let json = serde_json_like(&a);
        let mut b: Rng = Rng { s: json };
        assert_eq!(a.next_u64(), b.next_u64());
    }

    fn serde_json_like(r: &Rng) -> [u64; 4] {
        r.s
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::seed_from_u64(1);
        let n = 200_000;
        let (mut su, mut sn, mut sn2) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            su += r.uniform();
            let z = r.normal();
            sn += z;
            sn2 += z * z;
        }
        assert!((su / n as f64 - 0.5).abs() < 0.005);
        assert!((sn / n as f64).abs() < 0.01);
        assert!((sn2 / n as f64 - 1.0).abs() < 0.02);
    }

    #[test]
    fn below_is_in_range_and_covers() {
        let mut r = Rng::seed_from_u64(3);
        let mut seen = [0usize; 5];
        for _ in 0..10_000 {
            seen[r.below(5) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 1_800 && c < 2_200), "{seen:?}");
    }

    #[test]
    fn categorical_respects_zero_weights() {
        let mut r = Rng::seed_from_u64(9);
        for _ in 0..1000 {
            let i = r.categorical(&[0.0, 0.3, 0.0, 0.7]);
            assert!(i == 1 || i == 3);
        }
        assert_eq!(r.categorical(&[0.0, 0.0, 1.0]), 2);
    }
}
