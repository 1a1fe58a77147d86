//! How much to trust a Sharpe ratio: the probabilistic and deflated Sharpe ratios.
//!
//! Both work with the **per-period** (not annualized) Sharpe ratio
//! `SR = mean(r - rf) / std(r - rf, ddof = 1)` of `n` returns, and with the sample skewness
//! `g1` and kurtosis `b2` of the returns (see [`skewness`], [`kurtosis`]). Divide an
//! annualized Sharpe ratio by `sqrt(A)`, and its variance by `A`, to bring it to these units.
//!
//! * Probabilistic Sharpe ratio (Bailey & López de Prado, "The Sharpe Ratio Efficient
//!   Frontier", Journal of Risk 15(2), 2012): the probability that the true Sharpe ratio
//!   exceeds a benchmark `SR*`, allowing for the estimation error of a non-normal sample,
//!
//!   `PSR(SR*) = Phi( (SR - SR*) sqrt(n - 1) / sqrt(1 - g1 SR + (b2 - 1)/4 SR^2) )`.
//!
//! * Deflated Sharpe ratio (Bailey & López de Prado, "The Deflated Sharpe Ratio: Correcting
//!   for Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio
//!   Management 40(5), 2014): the PSR against the Sharpe ratio the best of `N` independent
//!   trials would reach by luck, `DSR = PSR(SR_0)`, with
//!
//!   `SR_0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))`,
//!
//!   `V` the variance of the trials' Sharpe ratios and `gamma` the Euler-Mascheroni constant
//!   (see [`expected_max_sharpe`]).

use quantrl_core::{ConfigError, check_non_negative};

use crate::error::{EvalError, check_finite, check_series};
use crate::normal::{normal_cdf, normal_inv_cdf};
use crate::returns::sharpe_per_period;
use crate::stats::central_moments;

/// The Euler-Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Sample skewness `g1 = m3 / m2^(3/2)`, with the central moments `m_k = mean((x - mean)^k)`.
///
/// The moment estimator the PSR paper uses (scipy's `skew(x, bias=True)`): 0 for a normal
/// sample on average, positive for a long right tail. NaN for a constant series (or a single
/// value).
pub fn skewness(values: &[f64]) -> Result<f64, EvalError> {
    check_series("values", values)?;
    Ok(moments(values).map_or(f64::NAN, |m| m.skewness))
}

/// Sample kurtosis `b2 = m4 / m2^2` (not excess: 3 for a normal distribution), with the
/// central moments `m_k = mean((x - mean)^k)`.
///
/// scipy's `kurtosis(x, fisher=False, bias=True)`. Always `>= 1 + g1^2`. NaN for a constant
/// series (or a single value).
pub fn kurtosis(values: &[f64]) -> Result<f64, EvalError> {
    check_series("values", values)?;
    Ok(moments(values).map_or(f64::NAN, |m| m.kurtosis))
}

/// Skewness and kurtosis, or `None` for a series without dispersion.
struct Moments {
    skewness: f64,
    kurtosis: f64,
}

fn moments(values: &[f64]) -> Option<Moments> {
    if values.iter().all(|&v| v == values[0]) {
        return None;
    }
    let (m2, m3, m4) = central_moments(values);
    Some(Moments {
        skewness: m3 / m2.powf(1.5),
        kurtosis: m4 / (m2 * m2),
    })
}

/// Probabilistic Sharpe ratio: the probability that the true per-period Sharpe ratio of the
/// process behind `returns` exceeds `benchmark_sharpe` (per period), in [0, 1].
///
/// Bailey & López de Prado, "The Sharpe Ratio Efficient Frontier", Journal of Risk 15(2),
/// 2012, allowing for the estimation error of a Sharpe ratio from `n` non-normal returns:
///
/// `PSR(SR*) = Phi( (SR - SR*) sqrt(n - 1) / sqrt(1 - g1 SR + (b2 - 1)/4 SR^2) )`
///
/// with `SR = mean(r - rf) / std(r - rf, ddof = 1)` **per period** (the annualized
/// [`sharpe_ratio`](crate::sharpe_ratio) over `sqrt(A)`), `g1` the [`skewness`] and `b2` the
/// [`kurtosis`] (not excess) of the excess returns, and `Phi` the [`normal_cdf`]. To test
/// against an annualized benchmark, divide it by `sqrt(A)`.
///
/// `risk_free` is per period. NaN for fewer than 2 returns or for constant returns (the
/// Sharpe ratio, skewness and kurtosis are undefined or infinite there).
///
/// ```
/// use quantrl_eval::probabilistic_sharpe_ratio;
/// // SR = 1/(2 sqrt 3), g1 = 0, b2 = 1, n = 4: z = SR sqrt(3) = 1/2.
/// let psr = probabilistic_sharpe_ratio(&[0.02, -0.01, 0.02, -0.01], 0.0, 0.0)?;
/// assert!((psr - 0.6914624612740131).abs() < 1e-12);
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
pub fn probabilistic_sharpe_ratio(
    returns: &[f64],
    risk_free: f64,
    benchmark_sharpe: f64,
) -> Result<f64, EvalError> {
    check_series("returns", returns)?;
    check_finite("risk_free", risk_free)?;
    check_finite("benchmark_sharpe", benchmark_sharpe)?;
    let excess: Vec<f64> = returns.iter().map(|r| r - risk_free).collect();
    // A single return has no dispersion either.
    let Some(m) = moments(&excess) else {
        return Ok(f64::NAN);
    };
    let sr = sharpe_per_period(&excess);
    // Non-negative in exact arithmetic (b2 >= 1 + g1^2 makes it >= (1 - g1 SR/2)^2); clamp
    // the rounding of the degenerate two-point case.
    let variance_factor = (1.0 - m.skewness * sr + (m.kurtosis - 1.0) / 4.0 * sr * sr).max(0.0);
    let z = (sr - benchmark_sharpe) * ((excess.len() - 1) as f64).sqrt() / variance_factor.sqrt();
    Ok(normal_cdf(z))
}

/// The per-period Sharpe ratio that the best of `n_trials` independent strategies with no
/// skill is expected to show by luck (Bailey & López de Prado, 2014):
///
/// `SR_0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))`
///
/// with `N = n_trials`, `V = trials_sharpe_variance` the variance across the trials of their
/// per-period Sharpe ratios (an annualized variance divided by `A`), `gamma` the
/// Euler-Mascheroni constant and `Phi^-1` the [`normal_inv_cdf`]. The trials' true Sharpe
/// ratios are taken to be 0.
///
/// One trial has no selection bias: `SR_0 = 0` (the formula's `Phi^-1(0) = -inf` does not
/// apply). `n_trials` must be at least 1 and `V` finite and non-negative.
pub fn expected_max_sharpe(n_trials: usize, trials_sharpe_variance: f64) -> Result<f64, EvalError> {
    check_non_negative("trials_sharpe_variance", trials_sharpe_variance)?;
    match n_trials {
        0 => Err(ConfigError::out_of_range("n_trials", 0, ">= 1").into()),
        1 => Ok(0.0),
        _ => {
            let n = n_trials as f64;
            let quantiles = (1.0 - EULER_GAMMA) * normal_inv_cdf(1.0 - 1.0 / n)
                + EULER_GAMMA * normal_inv_cdf(1.0 - 1.0 / (n * std::f64::consts::E));
            Ok(trials_sharpe_variance.sqrt() * quantiles)
        }
    }
}

/// Deflated Sharpe ratio: `DSR = PSR(SR_0)`, the [PSR](probabilistic_sharpe_ratio) of
/// `returns` against `SR_0 = `[`expected_max_sharpe`]`(n_trials, trials_sharpe_variance)`, the
/// Sharpe ratio that the best of the `n_trials` strategies tried would show by luck alone.
///
/// Bailey & López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection Bias,
/// Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 2014.
/// The probability, in [0, 1], that the selected strategy's Sharpe ratio is not an artifact of
/// selection among many backtests and of non-normal returns. With one trial it is `PSR(0)`.
/// `risk_free` and the variance are per period.
///
/// ```
/// use quantrl_eval::{deflated_sharpe_ratio, probabilistic_sharpe_ratio};
/// let r = [0.02, -0.01, 0.02, -0.01, 0.015, -0.005];
/// let psr = probabilistic_sharpe_ratio(&r, 0.0, 0.0)?;
/// assert_eq!(deflated_sharpe_ratio(&r, 0.0, 1, 0.0)?, psr);
/// assert!(deflated_sharpe_ratio(&r, 0.0, 100, 0.01)? < psr);
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
pub fn deflated_sharpe_ratio(
    returns: &[f64],
    risk_free: f64,
    n_trials: usize,
    trials_sharpe_variance: f64,
) -> Result<f64, EvalError> {
    let benchmark = expected_max_sharpe(n_trials, trials_sharpe_variance)?;
    probabilistic_sharpe_ratio(returns, risk_free, benchmark)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol, "got {got:e}, want {want:e}");
    }

    // r = [0.02, -0.01, 0.02, -0.01]: mean 0.005, deviations +/-0.015, so m2 = 2.25e-4,
    // m3 = 0 and m4 = m2^2: g1 = 0, b2 = 1. std(ddof 1) = sqrt(4 m2 / 3) = sqrt(3e-4), so
    // SR = 0.005 / sqrt(3e-4) = 1 / (2 sqrt 3) = 0.28867513459481287. The variance factor is
    // 1 - 0 + 0 = 1 and z = SR sqrt(n - 1) = SR sqrt 3 = 1/2: PSR(0) = Phi(0.5).
    const SYMMETRIC: [f64; 4] = [0.02, -0.01, 0.02, -0.01];
    const PHI_HALF: f64 = 0.6914624612740131;

    // r = [0, 0, 0, 0.04] = 0.01 [0, 0, 0, 4]: mean 0.01, deviations 0.01 [-1, -1, -1, 3],
    // m2 = 12/4 = 3 (x 1e-4), m3 = 24/4 = 6 (x 1e-6), m4 = 84/4 = 21 (x 1e-8):
    // g1 = 6 / 3^1.5 = 2 / sqrt 3, b2 = 21 / 9 = 7/3. std(ddof 1) = 0.01 sqrt(12/3) = 0.02, so
    // SR = 1/2. Variance factor = 1 - (2/sqrt 3)(1/2) + (4/3)/4 (1/4) = 13/12 - 1/sqrt 3
    // = 0.5059830641437074.
    const SKEWED: [f64; 4] = [0.0, 0.0, 0.0, 0.04];

    #[test]
    fn moments_of_hand_computed_series() {
        close(skewness(&SYMMETRIC).unwrap(), 0.0, 1e-12);
        close(kurtosis(&SYMMETRIC).unwrap(), 1.0, 1e-12);
        close(skewness(&SKEWED).unwrap(), 2.0 / 3f64.sqrt(), 1e-12);
        close(kurtosis(&SKEWED).unwrap(), 7.0 / 3.0, 1e-12);
        assert!(skewness(&[0.01; 3]).unwrap().is_nan());
        assert!(kurtosis(&[0.01]).unwrap().is_nan());
    }

    #[test]
    fn psr_of_a_symmetric_two_point_series() {
        close(
            probabilistic_sharpe_ratio(&SYMMETRIC, 0.0, 0.0).unwrap(),
            PHI_HALF,
            1e-12,
        );
        // Against its own Sharpe ratio: z = 0, probability 1/2.
        let sr = 0.5 / 3f64.sqrt();
        close(
            probabilistic_sharpe_ratio(&SYMMETRIC, 0.0, sr).unwrap(),
            0.5,
            1e-12,
        );
        // A risk-free rate of 0.005 per period makes the mean excess return 0: z = 0.
        close(
            probabilistic_sharpe_ratio(&SYMMETRIC, 0.005, 0.0).unwrap(),
            0.5,
            1e-12,
        );
    }

    #[test]
    fn psr_of_a_skewed_series() {
        // z = (1/2) sqrt 3 / sqrt(0.5059830641437074) = 1.217482258673933,
        // Phi(z) = 0.8882896087382457.
        close(
            probabilistic_sharpe_ratio(&SKEWED, 0.0, 0.0).unwrap(),
            0.8882896087382457,
            1e-12,
        );
        // Against SR* = 0.2: z = 0.3 sqrt 3 / 0.7113248 = 0.7304893552043598,
        // Phi(z) = 0.767454441346337.
        close(
            probabilistic_sharpe_ratio(&SKEWED, 0.0, 0.2).unwrap(),
            0.767454441346337,
            1e-12,
        );
    }

    #[test]
    fn psr_is_nan_without_dispersion() {
        assert!(
            probabilistic_sharpe_ratio(&[0.01; 5], 0.0, 0.0)
                .unwrap()
                .is_nan()
        );
        assert!(
            probabilistic_sharpe_ratio(&[0.01], 0.0, 0.0)
                .unwrap()
                .is_nan()
        );
        assert!(probabilistic_sharpe_ratio(&[0.01, 0.02], 0.0, f64::NAN).is_err());
    }

    #[test]
    fn expected_max_sharpe_of_hand_computed_trials() {
        assert_eq!(expected_max_sharpe(1, 0.3).unwrap(), 0.0);
        // N = 2: Phi^-1(1/2) = 0 and Phi^-1(1 - 1/(2e)) = Phi^-1(0.8160602794142788)
        // = 0.9004525966377903, so SR_0 = sqrt(0.01) gamma 0.90045... = 0.05197553442805939.
        close(
            expected_max_sharpe(2, 0.01).unwrap(),
            0.05197553442805939,
            1e-14,
        );
        // N = 100, V = 4e-4: Phi^-1(0.99) = 2.3263478740408408,
        // Phi^-1(1 - 1/(100e)) = 2.680210444966887, so
        // SR_0 = 0.02 (0.42278 2.32635 + 0.57722 2.68021) = 0.050612057864033694.
        close(
            expected_max_sharpe(100, 4e-4).unwrap(),
            0.050612057864033694,
            1e-14,
        );
        assert!(expected_max_sharpe(0, 0.01).is_err());
        assert!(expected_max_sharpe(10, -0.01).is_err());
    }

    #[test]
    fn dsr_is_the_psr_against_the_expected_maximum() {
        // One trial: no deflation.
        close(
            deflated_sharpe_ratio(&SYMMETRIC, 0.0, 1, 0.5).unwrap(),
            PHI_HALF,
            1e-12,
        );
        // N = 2, V = 0.01: z = (SR - 0.05197553442805939) sqrt 3 = 0.5 - 0.0900242663799442
        // = 0.4099757336200558, Phi(z) = 0.6590881257202246.
        close(
            deflated_sharpe_ratio(&SYMMETRIC, 0.0, 2, 0.01).unwrap(),
            0.6590881257202246,
            1e-12,
        );
        // More trials deflate more.
        let many = deflated_sharpe_ratio(&SYMMETRIC, 0.0, 1000, 0.01).unwrap();
        assert!(many < 0.6590881257202246);
    }
}
