//! Confidence intervals of a mean across seeds: Student's t distribution.

use quantrl_core::{ConfigError, check_open};
use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::stats::{mean, sample_std};

/// `ln Gamma(x)` for `x > 0` (Lanczos, g = 7, 9 terms; relative error about 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Gamma(x) Gamma(1 - x) = pi / sin(pi x).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = G[0];
    for (k, g) in G.iter().enumerate().skip(1) {
        sum += g / (x + k as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..1000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function `I_x(a, b)`.
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// The cumulative distribution function of Student's t distribution with `df > 0` degrees of
/// freedom: `P(T <= t)`.
///
/// ```
/// use quantrl_eval::student_t_cdf;
/// assert_eq!(student_t_cdf(0.0, 5.0), 0.5);
/// // One degree of freedom is the Cauchy distribution: 1/2 + atan(t)/pi.
/// assert!((student_t_cdf(1.0, 1.0) - 0.75).abs() < 1e-14);
/// ```
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t == 0.0 {
        return 0.5;
    }
    let tail = 0.5 * incomplete_beta(0.5 * df, 0.5, df / (df + t * t));
    if t > 0.0 { 1.0 - tail } else { tail }
}

/// The quantile function of Student's t distribution: the `t` with
/// `student_t_cdf(t, df) == p`, for `0 < p < 1` and `df > 0` (NaN otherwise).
///
/// Found by bisection on the CDF to full double precision.
///
/// ```
/// use quantrl_eval::student_t_inv_cdf;
/// // The 97.5% quantile with 2 degrees of freedom has the closed form 0.95 / sqrt(0.04875).
/// let t = student_t_inv_cdf(0.975, 2.0);
/// assert!((t - 0.95 / 0.04875f64.sqrt()).abs() < 1e-12);
/// ```
pub fn student_t_inv_cdf(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -student_t_inv_cdf(1.0 - p, df);
    }
    let mut hi = 1.0;
    while student_t_cdf(hi, df) < p {
        hi *= 2.0;
        if hi > 1e300 {
            return f64::INFINITY;
        }
    }
    let mut lo = 0.0;
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The mean of a sample (one value per seed) and its two-sided t confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanInterval {
    /// Number of values.
    pub n: usize,
    /// Their mean.
    #[serde(with = "crate::float_serde")]
    pub mean: f64,
    /// Their sample standard deviation (NaN for one value).
    #[serde(with = "crate::float_serde")]
    pub std: f64,
    /// Confidence level (0.95 for a 95% interval).
    pub level: f64,
    /// `mean - t_{(1 + level) / 2, n - 1} * std / sqrt(n)` (NaN for one value).
    #[serde(with = "crate::float_serde")]
    pub low: f64,
    /// `mean + t_{(1 + level) / 2, n - 1} * std / sqrt(n)` (NaN for one value).
    #[serde(with = "crate::float_serde")]
    pub high: f64,
}

impl MeanInterval {
    /// The mean of `values` with its Student-t confidence interval at `level` (in (0, 1)):
    /// `mean +/- t_{(1 + level)/2, n - 1} * s / sqrt(n)` with `s` the sample standard
    /// deviation. It assumes the values (one per seed) are independent draws of a roughly
    /// normal quantity; with one value the interval is undefined (NaN). NaN or infinite
    /// values (an infinite Sharpe ratio of a constant series) make every field but `n` NaN
    /// or infinite accordingly: they are reported, not hidden.
    ///
    /// ```
    /// use quantrl_eval::MeanInterval;
    /// let ci = MeanInterval::of(&[1.0, 2.0, 3.0], 0.95)?;
    /// assert_eq!((ci.mean, ci.std), (2.0, 1.0));
    /// // t_{0.975, 2} = 4.302652729749464; half-width 4.3027 / sqrt(3).
    /// assert!((ci.high - 2.0 - 4.302652729749464 / 3f64.sqrt()).abs() < 1e-12);
    /// # Ok::<(), quantrl_eval::EvalError>(())
    /// ```
    pub fn of(values: &[f64], level: f64) -> Result<Self, EvalError> {
        check_open("confidence_level", level, 0.0, 1.0)?;
        if values.is_empty() {
            return Err(EvalError::EmptySeries { series: "values" });
        }
        let n = values.len();
        let m = mean(values);
        let s = sample_std(values);
        let half = if n >= 2 {
            student_t_inv_cdf(0.5 * (1.0 + level), (n - 1) as f64) * s / (n as f64).sqrt()
        } else {
            f64::NAN
        };
        Ok(Self {
            n,
            mean: m,
            std: s,
            level,
            low: m - half,
            high: m + half,
        })
    }

    /// The interval intersected with the range `[lo, hi]` a metric can take (a max drawdown
    /// lies in `[-1, 0]`, a cumulative return is at least `-1`): with few seeds and a skewed
    /// metric the symmetric t interval can reach values no run can have; the truncated
    /// interval keeps the same coverage (the true mean lies in the range). The mean and the
    /// standard deviation are unchanged, the range is widened to hold the mean if it does not
    /// (e.g. a NAV that went negative), and NaN bounds stay NaN.
    ///
    /// ```
    /// use quantrl_eval::MeanInterval;
    /// let dd = MeanInterval::of(&[-0.05, -0.1, -0.9], 0.95)?.clamped(-1.0, 0.0);
    /// assert_eq!((dd.low, dd.high), (-1.0, 0.0));
    /// # Ok::<(), quantrl_eval::EvalError>(())
    /// ```
    pub fn clamped(mut self, lo: f64, hi: f64) -> Self {
        let (lo, hi) = if self.mean.is_nan() {
            (lo, hi)
        } else {
            (lo.min(self.mean), hi.max(self.mean))
        };
        let clip = |x: f64| if x.is_nan() { x } else { x.clamp(lo, hi) };
        self.low = clip(self.low);
        self.high = clip(self.high);
        self
    }
}

/// Check a confidence level, naming the field.
pub(crate) fn check_level(field: &str, level: f64) -> Result<(), ConfigError> {
    check_open(field, level, 0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamped_intervals_stay_in_range_and_keep_the_mean() {
        // Cumulative returns of three seeds: the t interval goes below -100%.
        let ci = MeanInterval::of(&[0.2, 0.1, 9.0], 0.95).unwrap();
        assert!(ci.low < -1.0);
        let c = ci.clone().clamped(-1.0, f64::INFINITY);
        assert_eq!(
            (c.low, c.high, c.mean, c.std),
            (-1.0, ci.high, ci.mean, ci.std)
        );
        // A mean outside the range widens it instead of being excluded.
        let c = MeanInterval::of(&[-1.5, -1.2, -1.3], 0.95)
            .unwrap()
            .clamped(-1.0, 0.0);
        assert!(
            c.low <= c.mean && c.mean <= c.high && c.high <= 0.0,
            "{c:?}"
        );
        // One value: NaN bounds stay NaN.
        let c = MeanInterval::of(&[0.5], 0.95).unwrap().clamped(0.0, 1.0);
        assert!(c.low.is_nan() && c.high.is_nan());
    }

    #[test]
    fn t_quantiles_match_closed_forms_and_tables() {
        for p in [0.6, 0.9, 0.975, 0.995] {
            // df = 1: Cauchy, tan(pi (p - 1/2)).
            let cauchy = (std::f64::consts::PI * (p - 0.5)).tan();
            assert!((student_t_inv_cdf(p, 1.0) - cauchy).abs() < 1e-10 * cauchy.max(1.0));
            // df = 2: (2p - 1) / sqrt(2 p (1 - p)).
            let two = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
            assert!((student_t_inv_cdf(p, 2.0) - two).abs() < 1e-12 * two.max(1.0));
        }
        // Large df tends to the normal quantile 1.959963984540054.
        assert!((student_t_inv_cdf(0.975, 1e7) - 1.959_963_984_540_054).abs() < 1e-6);
        // A t table (R: qt(0.975, df)).
        for (df, q) in [
            (4.0, 2.776_445_105_197_799),
            (9.0, 2.262_157_162_740_992),
            (30.0, 2.042_272_456_301_238),
        ] {
            assert!((student_t_inv_cdf(0.975, df) - q).abs() < 1e-9, "df {df}");
        }
        assert!(student_t_inv_cdf(0.0, 3.0).is_nan());
        assert_eq!(
            student_t_inv_cdf(0.025, 3.0),
            -student_t_inv_cdf(0.975, 3.0)
        );
    }

    #[test]
    fn one_value_has_no_interval_and_bad_levels_are_named() {
        let ci = MeanInterval::of(&[0.5], 0.95).unwrap();
        assert_eq!(ci.mean, 0.5);
        assert!(ci.low.is_nan() && ci.high.is_nan());
        let e = MeanInterval::of(&[1.0, 2.0], 1.0).unwrap_err();
        assert!(e.to_string().contains("confidence_level"), "{e}");
        assert!(MeanInterval::of(&[], 0.9).is_err());
    }
}
