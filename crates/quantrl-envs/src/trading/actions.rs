//! How actions become target weights: position levels, clamped weights, softmax or simplex
//! projection with leverage and concentration caps, and predefined portfolio regimes.

use quantrl_core::{ConfigError, Space, check_positive};
use serde::{Deserialize, Serialize};

use super::kernels::{LANES, exp_non_positive, lane_sum};

/// Actions of a [`SingleAssetEnv`](crate::trading::SingleAssetEnv).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum PositionActions {
    /// `Discrete(levels.len())`: action `k` targets the weight `levels[k]` of net asset value
    /// in the asset (e.g. `[-1, 0, 1]` for short, flat, long). Choosing the level already held
    /// keeps the position as it is (no rebalancing of price drift).
    Levels {
        /// Target weights, one per action.
        levels: Vec<f64>,
    },
    /// `Box([min_weight, max_weight])`: the action is the target weight, clamped to the box.
    Continuous {
        /// Lowest target weight (e.g. -1 for fully short).
        min_weight: f64,
        /// Highest target weight (e.g. 1 for fully long, 2 for 2x leverage).
        max_weight: f64,
    },
}

impl Default for PositionActions {
    /// Short, flat, long.
    fn default() -> Self {
        Self::Levels {
            levels: vec![-1.0, 0.0, 1.0],
        }
    }
}

/// How a continuous portfolio action (one score per asset plus one for cash) becomes weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightMapping {
    /// Softmax of the `n_assets + 1` scores (action box `[-5, 5]`).
    Softmax,
    /// Euclidean projection of the scores onto the probability simplex (Duchi et al. 2008;
    /// action box `[0, 1]`).
    SimplexProjection,
}

/// Actions of a [`PortfolioEnv`](crate::trading::PortfolioEnv).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum PortfolioActions {
    /// Continuous target weights: the scores are mapped onto the simplex (long-only weights
    /// that with cash sum to one), every asset weight is scaled by `leverage` (cash goes
    /// negative above 1 and is financed) and then capped at `max_weight`, the excess going to
    /// cash.
    Weights {
        /// Scores to weights.
        mapping: WeightMapping,
        /// Gross exposure of a fully invested portfolio (1 = no leverage).
        leverage: f64,
        /// Concentration cap: the largest weight of one asset.
        max_weight: f64,
    },
    /// `Discrete(k)`: each action selects one predefined allocation (a weight per asset, the
    /// rest in cash). `None` uses [`default_regimes`]. Choosing the allocation already held
    /// keeps the book as it is.
    Regimes {
        /// Allocations, each of length `n_assets`.
        allocations: Option<Vec<Vec<f64>>>,
    },
}

impl Default for PortfolioActions {
    /// Softmax weights, no leverage, at most 25% in one asset.
    fn default() -> Self {
        Self::Weights {
            mapping: WeightMapping::Softmax,
            leverage: 1.0,
            max_weight: 0.25,
        }
    }
}

/// The 16 default portfolio regimes for `n_assets` assets. Assets are split into four
/// contiguous groups by index (asset `a` is in group `4a / n`):
///
/// | actions | allocation |
/// |---|---|
/// | 0 | all cash |
/// | 1-4 | equal weight at 25%, 50%, 75%, 100% invested |
/// | 5-8 | group g fully invested (equal weight inside the group; with fewer than four assets an empty group is the full equal-weight portfolio) |
/// | 9-12 | half equal weight, half group g |
/// | 13 | equal weight at 150% (financed) |
/// | 14, 15 | equal-weight short at 50% and 100% |
pub fn default_regimes(n_assets: usize) -> Vec<Vec<f64>> {
    let n = n_assets;
    let ew = |x: f64| vec![x / n as f64; n];
    let group_of = |a: usize| 4 * a / n;
    let group = |g: usize| {
        let members = (0..n).filter(|&a| group_of(a) == g).count();
        if members == 0 {
            // Fewer than four assets: an empty group is the equal-weight portfolio.
            return ew(1.0);
        }
        (0..n)
            .map(|a| {
                if group_of(a) == g {
                    1.0 / members as f64
                } else {
                    0.0
                }
            })
            .collect::<Vec<f64>>()
    };
    let mut out = vec![vec![0.0; n]];
    for x in [0.25, 0.5, 0.75, 1.0] {
        out.push(ew(x));
    }
    for g in 0..4 {
        out.push(group(g));
    }
    for g in 0..4 {
        let e = ew(0.5);
        out.push(group(g).iter().zip(&e).map(|(a, b)| 0.5 * a + b).collect());
    }
    out.push(ew(1.5));
    out.push(ew(-0.5));
    out.push(ew(-1.0));
    out
}

/// The resolved action mapping of a trading environment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ActionMap {
    /// Discrete choice among allocations, `[k * n_assets]`.
    Levels { allocations: Vec<f64>, k: usize },
    /// Per-asset target weights clamped to `[low, high]`.
    Clamp { low: f64, high: f64 },
    /// Scores mapped to the simplex, then leverage and cap.
    Simplex {
        mapping: WeightMapping,
        leverage: f64,
        max_weight: f64,
    },
}

impl ActionMap {
    pub(crate) fn from_position(a: &PositionActions) -> Result<Self, ConfigError> {
        match a {
            PositionActions::Levels { levels } => {
                if levels.is_empty() || levels.iter().any(|l| !l.is_finite()) {
                    return Err(ConfigError::Inconsistent(format!(
                        "actions.levels must be non-empty and finite, got {levels:?}"
                    )));
                }
                Ok(Self::Levels {
                    allocations: levels.clone(),
                    k: levels.len(),
                })
            }
            PositionActions::Continuous {
                min_weight,
                max_weight,
            } => {
                if !(min_weight.is_finite() && max_weight.is_finite() && min_weight < max_weight) {
                    return Err(ConfigError::Inconsistent(format!(
                        "actions.min_weight ({min_weight}) must be below actions.max_weight ({max_weight})"
                    )));
                }
                Ok(Self::Clamp {
                    low: *min_weight,
                    high: *max_weight,
                })
            }
        }
    }

    pub(crate) fn from_portfolio(a: &PortfolioActions, n: usize) -> Result<Self, ConfigError> {
        match a {
            PortfolioActions::Weights {
                mapping,
                leverage,
                max_weight,
            } => {
                check_positive("actions.leverage", *leverage)?;
                check_positive("actions.max_weight", *max_weight)?;
                Ok(Self::Simplex {
                    mapping: *mapping,
                    leverage: *leverage,
                    max_weight: *max_weight,
                })
            }
            PortfolioActions::Regimes { allocations } => {
                let allocs = allocations.clone().unwrap_or_else(|| default_regimes(n));
                if allocs.is_empty() {
                    return Err(ConfigError::Inconsistent(
                        "actions.allocations is empty".into(),
                    ));
                }
                for (k, row) in allocs.iter().enumerate() {
                    if row.len() != n || row.iter().any(|w| !w.is_finite()) {
                        return Err(ConfigError::Inconsistent(format!(
                            "actions.allocations[{k}] must hold {n} finite weights, got {row:?}"
                        )));
                    }
                }
                Ok(Self::Levels {
                    k: allocs.len(),
                    allocations: allocs.concat(),
                })
            }
        }
    }

    pub(crate) fn space(&self, n: usize) -> Space {
        match self {
            Self::Levels { k, .. } => Space::Discrete { n: *k },
            Self::Clamp { low, high } => Space::uniform_box(n, *low as f32, *high as f32),
            Self::Simplex { mapping, .. } => match mapping {
                WeightMapping::Softmax => Space::uniform_box(n + 1, -5.0, 5.0),
                WeightMapping::SimplexProjection => Space::uniform_box(n + 1, 0.0, 1.0),
            },
        }
    }

    /// Continuous action -> target weights (`out.len() == n_assets`); `scratch` has room for
    /// `n_assets + 1` values (room for more lets the softmax run on whole vectors).
    #[inline(always)]
    pub(crate) fn continuous_targets(&self, action: &[f32], out: &mut [f64], scratch: &mut [f64]) {
        match self {
            Self::Clamp { low, high } => {
                for (o, &a) in out.iter_mut().zip(action) {
                    *o = (a as f64).clamp(*low, *high);
                }
            }
            Self::Simplex {
                mapping,
                leverage,
                max_weight,
            } => {
                let (scores, rest) = scratch.split_at_mut(action.len());
                for (x, &a) in scores.iter_mut().zip(action) {
                    *x = a as f64;
                }
                rest.fill(f64::NEG_INFINITY);
                match mapping {
                    // Over the whole scratch: the scores past the action are `-inf` (their
                    // weights exactly 0, added last), so every pass runs on whole vectors and
                    // the weights are those of the action's scores alone, bit for bit.
                    WeightMapping::Softmax => softmax_in_place(scratch),
                    WeightMapping::SimplexProjection => {
                        project_to_simplex(&mut scratch[..action.len()])
                    }
                }
                for (o, &w) in out.iter_mut().zip(scratch.iter()) {
                    *o = (w * leverage).min(*max_weight);
                }
            }
            Self::Levels { .. } => unreachable!("discrete actions have no continuous targets"),
        }
    }
}

/// Numerically stable softmax in place: the maximum and the sum of the exponentials by
/// [`LANES`] running lanes (whole vectors, no dependency chain through every element), the
/// exponentials in one vectorizable pass ([`exp_non_positive`]). NaN scores are ignored by
/// the maximum, as `f64::max` ignores them (the environments refuse non-finite actions).
#[inline(always)]
pub(crate) fn softmax_in_place(x: &mut [f64]) {
    let mut lanes = [f64::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for j in 0..LANES {
            lanes[j] = if c[j] > lanes[j] { c[j] } else { lanes[j] };
        }
    }
    let mut m = f64::NEG_INFINITY;
    for &v in lanes.iter().chain(chunks.remainder()) {
        m = if v > m { v } else { m };
    }
    for v in x.iter_mut() {
        *v = exp_non_positive(*v - m);
    }
    // One division, then products (within an ulp of dividing each weight).
    let inv_total = 1.0 / lane_sum(x);
    for v in x.iter_mut() {
        *v *= inv_total;
    }
}

/// Euclidean projection onto `{w >= 0, sum w = 1}` in place (Duchi et al. 2008), without
/// allocating: the threshold is found by a sort-free scan, `O(n^2)` worst case, which beats a
/// sort for the handful of assets of a portfolio.
#[inline(always)]
pub(crate) fn project_to_simplex(w: &mut [f64]) {
    // theta is the unique value with sum(max(w - theta, 0)) = 1. For each candidate pivot
    // w_j, the support {i: w_i >= w_j} gives theta_j = (sum_support - 1) / |support|; the
    // right theta is the one whose support is consistent (w_j > theta_j) with the largest
    // support.
    let mut best_theta = f64::NEG_INFINITY;
    let mut best_count = 0usize;
    for &pivot in w.iter() {
        let (mut sum, mut count) = (0.0, 0usize);
        for &v in w.iter() {
            if v >= pivot {
                sum += v;
                count += 1;
            }
        }
        let theta = (sum - 1.0) / count as f64;
        if pivot > theta && count > best_count {
            best_count = count;
            best_theta = theta;
        }
    }
    for v in w.iter_mut() {
        *v = (*v - best_theta).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_regimes_are_sixteen_and_sized() {
        for n in [1, 3, 20] {
            let r = default_regimes(n);
            assert_eq!(r.len(), 16);
            assert!(r.iter().all(|a| a.len() == n));
            assert_eq!(r[0].iter().sum::<f64>(), 0.0);
            assert!((r[4].iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for g in 5..13 {
                assert!((r[g].iter().sum::<f64>() - 1.0).abs() < 1e-12, "regime {g}");
            }
        }
    }

    #[test]
    fn softmax_sums_to_one_and_orders_like_its_scores() {
        let mut w = vec![-5.0, 5.0, 0.0, 1.0, -800.0];
        softmax_in_place(&mut w);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(w[1] > w[3] && w[3] > w[2] && w[2] > w[0] && w[0] > w[4]);
        assert_eq!(w[4], 0.0);
        let (e5, e1) = (5.0f64.exp(), 1.0f64.exp());
        let z = (-5.0f64).exp() + e5 + 1.0 + e1;
        assert!((w[1] - e5 / z).abs() < 1e-15);
    }

    #[test]
    fn projection_examples() {
        let mut w = vec![0.5, 0.5, 0.0];
        project_to_simplex(&mut w);
        assert_eq!(w, vec![0.5, 0.5, 0.0]);
        let mut w = vec![1.0, 1.0];
        project_to_simplex(&mut w);
        assert_eq!(w, vec![0.5, 0.5]);
        let mut w = vec![2.0, 0.0, 0.0];
        project_to_simplex(&mut w);
        assert_eq!(w, vec![1.0, 0.0, 0.0]);
    }

    proptest! {
        #[test]
        fn projection_lands_on_simplex_and_is_closest(v in prop::collection::vec(-3.0f64..3.0, 1..8)) {
            let mut w = v.clone();
            project_to_simplex(&mut w);
            prop_assert!(w.iter().all(|&x| x >= 0.0));
            prop_assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            // KKT: the projection is v - theta clipped at zero for one theta.
            let theta: Vec<f64> = w.iter().zip(&v).filter(|(x, _)| **x > 0.0).map(|(x, y)| y - x).collect();
            prop_assert!(theta.windows(2).all(|p| (p[0] - p[1]).abs() < 1e-9));
            if let Some(t) = theta.first() {
                prop_assert!(w.iter().zip(&v).all(|(x, y)| *x > 0.0 || *y <= *t + 1e-9));
            }
        }

        #[test]
        fn softmax_mapping_respects_caps(v in prop::collection::vec(-5.0f32..5.0, 4), lev in 0.5f64..2.0, cap in 0.1f64..1.0) {
            let map = ActionMap::Simplex { mapping: WeightMapping::Softmax, leverage: lev, max_weight: cap };
            let mut out = [0.0; 3];
            let mut scratch = [0.0; 4];
            map.continuous_targets(&v, &mut out, &mut scratch);
            prop_assert!(out.iter().all(|&w| (0.0..=cap + 1e-12).contains(&w)));
            prop_assert!(out.iter().sum::<f64>() <= lev + 1e-9);
        }
    }
}
