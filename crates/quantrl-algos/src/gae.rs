//! Generalized advantage estimation (Schulman et al. 2016) with Stable-Baselines3's
//! conventions.

/// Floating-point types GAE runs in (f32 as SB3's buffer, f64 for reference checks).
pub trait GaeFloat:
    Copy
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + PartialEq
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Conversion from f64 (for γ and λ).
    fn from_f64(v: f64) -> Self;
}

impl GaeFloat for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl GaeFloat for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// GAE(λ) advantages and TD(λ) returns, in place, exactly as SB3's
/// `RolloutBuffer.compute_returns_and_advantage`.
///
/// Arrays are `[step][env]`, flattened row-major (`n_steps * n_envs`):
/// - `episode_starts[t]` is 1 where the observation at step `t` is the first of an episode
///   (the previous step's `done`); `episode_starts[0]` is never read;
/// - `last_values[e]` is the value of the observation after the last step and `last_dones[e]`
///   whether the last step ended an episode;
/// - rewards of truncated steps must already include `γ V(final_obs)` (done by the rollout).
///
/// `returns = advantages + values`.
///
/// ```
/// use quantrl_algos::gae::compute_gae;
/// // One env, two steps, λ = 1, γ = 1: advantages are reward-to-go minus values.
/// let (mut adv, mut ret) = (vec![0.0f64; 2], vec![0.0f64; 2]);
/// compute_gae(&[1.0, 1.0], &[0.5, 0.5], &[1.0, 0.0], &[0.0], &[1.0], 1.0, 1.0, 1, &mut adv, &mut ret);
/// assert_eq!(ret, vec![2.0, 1.0]);
/// ```
pub fn compute_gae<T: GaeFloat>(
    rewards: &[T],
    values: &[T],
    episode_starts: &[T],
    last_values: &[T],
    last_dones: &[T],
    gamma: f64,
    gae_lambda: f64,
    n_envs: usize,
    advantages: &mut [T],
    returns: &mut [T],
) {
    let n = rewards.len();
    assert!(
        n.is_multiple_of(n_envs)
            && values.len() == n
            && episode_starts.len() == n
            && advantages.len() == n
            && returns.len() == n,
        "compute_gae: buffers must all be n_steps * n_envs long"
    );
    assert!(
        last_values.len() == n_envs && last_dones.len() == n_envs,
        "compute_gae: last_* must have n_envs entries"
    );
    let n_steps = n / n_envs;
    let gamma = T::from_f64(gamma);
    let gl = gamma * T::from_f64(gae_lambda);
    for e in 0..n_envs {
        let mut last_gae = T::ZERO;
        for t in (0..n_steps).rev() {
            let i = t * n_envs + e;
            let (next_non_terminal, next_value) = if t == n_steps - 1 {
                (T::ONE - last_dones[e], last_values[e])
            } else {
                (T::ONE - episode_starts[i + n_envs], values[i + n_envs])
            };
            let delta = rewards[i] + gamma * next_value * next_non_terminal - values[i];
            last_gae = delta + gl * next_non_terminal * last_gae;
            advantages[i] = last_gae;
            returns[i] = last_gae + values[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// With λ = 1 and no episode boundaries, GAE equals the discounted reward-to-go
        /// (bootstrapped with the last value) minus the value: the naive sum.
        #[test]
        fn gae_lambda_one_equals_naive_discounted_sum(
            rewards in proptest::collection::vec(-5.0f64..5.0, 1..40),
            values_seed in proptest::collection::vec(-5.0f64..5.0, 40),
            last in -5.0f64..5.0,
            gamma in 0.5f64..1.0,
        ) {
            let n = rewards.len();
            let values = &values_seed[..n];
            let starts = vec![0.0; n];
            let (mut adv, mut ret) = (vec![0.0; n], vec![0.0; n]);
            compute_gae(&rewards, values, &starts, &[last], &[0.0], gamma, 1.0, 1, &mut adv, &mut ret);
            for t in 0..n {
                let mut g = 0.0;
                let mut disc = 1.0;
                for k in t..n {
                    g += disc * rewards[k];
                    disc *= gamma;
                }
                g += disc * last;
                prop_assert!((ret[t] - g).abs() < 1e-9 * (1.0 + g.abs()));
                prop_assert!((adv[t] - (g - values[t])).abs() < 1e-9 * (1.0 + g.abs()));
            }
        }

        /// With general λ and episode boundaries, GAE equals the naive sum of discounted TD
        /// errors within each episode.
        #[test]
        fn gae_equals_naive_sum_of_td_errors(
            rewards in proptest::collection::vec(-5.0f64..5.0, 2..30),
            values_seed in proptest::collection::vec(-5.0f64..5.0, 30),
            starts_seed in proptest::collection::vec(proptest::bool::weighted(0.2), 30),
            last in -5.0f64..5.0,
            last_done in proptest::bool::ANY,
            gamma in 0.5f64..1.0,
            lambda in 0.0f64..1.0,
        ) {
            let n = rewards.len();
            let values = &values_seed[..n];
            let starts: Vec<f64> = starts_seed[..n].iter().map(|&b| b as u8 as f64).collect();
            let ld = last_done as u8 as f64;
            let (mut adv, mut ret) = (vec![0.0; n], vec![0.0; n]);
            compute_gae(&rewards, values, &starts, &[last], &[ld], gamma, lambda, 1, &mut adv, &mut ret);
            let nnt = |t: usize| if t + 1 == n { 1.0 - ld } else { 1.0 - starts[t + 1] };
            let nv = |t: usize| if t + 1 == n { last } else { values[t + 1] };
            for t in 0..n {
                let mut a = 0.0;
                let mut w = 1.0;
                for k in t..n {
                    let delta = rewards[k] + gamma * nv(k) * nnt(k) - values[k];
                    a += w * delta;
                    w *= gamma * lambda * nnt(k);
                    if w == 0.0 { break; }
                }
                prop_assert!((adv[t] - a).abs() < 1e-9 * (1.0 + a.abs()), "t={} {} vs {}", t, adv[t], a);
            }
        }
    }
}
