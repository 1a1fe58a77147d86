//! Causal technical indicators on plain slices.
//!
//! Every indicator here is **causal**: the value at index `t` is computed from inputs at
//! indices `0..=t` only, so appending data or changing data after `t` never changes it (a
//! property test checks this for each function). The warm-up, where there is not yet enough
//! data, is `NaN` (ATR: `0.0`, as in `ta`).
//!
//! The formulas reproduce the Python `ta` 0.11.0 package with `fillna=False` and pandas
//! defaults, quirks included; `tests/golden_indicators.rs` checks them against
//! `golden/indicators.json` to `rtol = 1e-9`:
//!
//! - [`rsi`] smooths gains and losses with `ewm(alpha = 1/w, adjust = False)` **seeded with
//!   the first change set to 0**, not with Wilder's SMA of the first `w` changes;
//! - the [`macd`] signal line starts at the first valid MACD value;
//! - [`bollinger`] uses the population standard deviation (`ddof = 0`);
//! - [`atr`] is seeded with the mean of the first `w` true ranges, `TR_0 = high_0 - low_0`,
//!   and its warm-up is `0.0`;
//! - [`daily_log_return_percent`] is in percent; [`rolling_std`] takes `ddof` (pandas'
//!   default is the sample deviation, `ddof = 1`).
//!
//! Price inputs (`close`, `high`, `low`) must be finite, and positive where a logarithm is
//! taken: anything else is a [`DataError`]. The rolling statistics accept `NaN` as a missing
//! value: a window that contains one gives `NaN`, as in pandas.

use std::ops::Range;

use quantrl_core::{check_non_negative, check_positive};

use crate::DataError;
use crate::error::{check_finite, check_prices, check_same_len, check_window};

/// MACD lines (`ta.trend.MACD`), each as long as the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Macd {
    /// `EMA_fast(close) - EMA_slow(close)`; `NaN` for `t < max(fast, slow) - 1`.
    pub macd: Vec<f64>,
    /// EMA of the MACD line with span `signal`, started at the first valid MACD value.
    pub signal: Vec<f64>,
    /// Histogram: `macd - signal`.
    pub histogram: Vec<f64>,
}

/// Bollinger bands (`ta.volatility.BollingerBands`), each as long as the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Bollinger {
    /// Rolling mean of the last `window` closes.
    pub mavg: Vec<f64>,
    /// Rolling population standard deviation (`ddof = 0`) of the same closes.
    pub mstd: Vec<f64>,
    /// Upper band: `mavg + k * mstd`.
    pub upper: Vec<f64>,
    /// Lower band: `mavg - k * mstd`.
    pub lower: Vec<f64>,
}

/// Relative strength index in `[0, 100]` (`ta.momentum.RSIIndicator`).
///
/// `d_t = close_t - close_{t-1}` with `d_0 = 0`; gains `max(d, 0)` and losses `max(-d, 0)` are
/// smoothed by an exponential average with `alpha = 1/window` seeded with the first value;
/// `RSI = 100 - 100 / (1 + gain / loss)`, and 100 where the smoothed loss is 0. `NaN` for
/// `t < window - 1`.
///
/// ```
/// let close = [1.0, 2.0, 3.0, 2.0, 4.0];
/// let r = quantrl_data::indicators::rsi(&close, 3).unwrap();
/// assert!(r[1].is_nan() && r[2] == 100.0 && r[3] < 100.0);
/// ```
pub fn rsi(close: &[f64], window: usize) -> Result<Vec<f64>, DataError> {
    check_window("rsi.window", window, 1)?;
    check_finite("close", close)?;
    let diff = |t: usize| if t == 0 { 0.0 } else { close[t] - close[t - 1] };
    let up: Vec<f64> = (0..close.len()).map(|t| diff(t).max(0.0)).collect();
    let down: Vec<f64> = (0..close.len()).map(|t| (-diff(t)).max(0.0)).collect();
    let alpha = 1.0 / window as f64;
    let up = ewm(&up, alpha, window);
    let down = ewm(&down, alpha, window);
    Ok(up
        .iter()
        .zip(&down)
        .map(|(&u, &d)| {
            if d == 0.0 {
                100.0
            } else {
                100.0 - 100.0 / (1.0 + u / d)
            }
        })
        .collect())
}

/// Exponential moving average with span `span` (`pandas ewm(span, adjust=False,
/// min_periods=span)`): `alpha = 2 / (span + 1)`, `E = x` at the first finite value, then
/// `E_t = (1 - alpha) E_{t-1} + alpha x_t`.
///
/// Leading `NaN`s (the warm-up of another indicator) are skipped, so the average starts at
/// the first finite value and is `NaN` until `span` values have been seen. A non-finite value
/// after the first finite one is an error.
pub fn ema(values: &[f64], span: usize) -> Result<Vec<f64>, DataError> {
    check_window("ema.span", span, 1)?;
    let start = values
        .iter()
        .position(|v| v.is_finite())
        .unwrap_or(values.len());
    if let Some(i) = values[start..].iter().position(|v| !v.is_finite()) {
        let index = start + i;
        return Err(DataError::NonFinite {
            series: "ema input".into(),
            index,
            value: values[index],
        });
    }
    Ok(ewm(values, 2.0 / (span as f64 + 1.0), span))
}

/// pandas `ewm(alpha, adjust=False, min_periods)` over a series whose only non-finite values
/// are leading ones.
fn ewm(values: &[f64], alpha: f64, min_periods: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; values.len()];
    let Some(start) = values.iter().position(|v| v.is_finite()) else {
        return out;
    };
    let old_weight = 1.0 - alpha;
    let mut average = values[start];
    for t in start..values.len() {
        if t > start {
            // pandas divides by (old + new weight), which is 1 only up to rounding; doing the
            // same keeps us bit-close to the reference.
            average = (old_weight * average + alpha * values[t]) / (old_weight + alpha);
        }
        if t + 1 >= start + min_periods {
            out[t] = average;
        }
    }
    out
}

/// MACD (`ta.trend.MACD(close, window_slow, window_fast, window_sign)`): fast minus slow EMA
/// of the close, its signal EMA and the histogram.
pub fn macd(close: &[f64], fast: usize, slow: usize, signal: usize) -> Result<Macd, DataError> {
    check_window("macd.fast", fast, 1)?;
    check_window("macd.slow", slow, 1)?;
    check_window("macd.signal", signal, 1)?;
    check_finite("close", close)?;
    let ema_fast = ema(close, fast)?;
    let ema_slow = ema(close, slow)?;
    let macd: Vec<f64> = ema_fast.iter().zip(&ema_slow).map(|(f, s)| f - s).collect();
    let signal = ema(&macd, signal)?;
    let histogram = macd.iter().zip(&signal).map(|(m, s)| m - s).collect();
    Ok(Macd {
        macd,
        signal,
        histogram,
    })
}

/// Bollinger bands over `window` closes at `k` population standard deviations
/// (`ta.volatility.BollingerBands(close, window, window_dev=k)`). `NaN` for `t < window - 1`.
pub fn bollinger(close: &[f64], window: usize, k: f64) -> Result<Bollinger, DataError> {
    check_window("bollinger.window", window, 1)?;
    check_non_negative("bollinger.k", k)?;
    check_finite("close", close)?;
    let mavg = rolling_mean(close, window)?;
    let mstd = rolling_std(close, window, 0)?;
    let upper = mavg.iter().zip(&mstd).map(|(m, s)| m + k * s).collect();
    let lower = mavg.iter().zip(&mstd).map(|(m, s)| m - k * s).collect();
    Ok(Bollinger {
        mavg,
        mstd,
        upper,
        lower,
    })
}

/// True range: `TR_0 = high_0 - low_0`, then
/// `max(high_t - low_t, |high_t - close_{t-1}|, |low_t - close_{t-1}|)`.
pub fn true_range(high: &[f64], low: &[f64], close: &[f64]) -> Result<Vec<f64>, DataError> {
    check_same_len("high", high, "close", close.len())?;
    check_same_len("low", low, "close", close.len())?;
    check_finite("high", high)?;
    check_finite("low", low)?;
    check_finite("close", close)?;
    Ok((0..close.len())
        .map(|t| {
            let range = high[t] - low[t];
            if t == 0 {
                range
            } else {
                let prev = close[t - 1];
                range.max((high[t] - prev).abs()).max((low[t] - prev).abs())
            }
        })
        .collect())
}

/// Average true range (`ta.volatility.AverageTrueRange`): `ATR_{w-1}` is the mean of the
/// first `w` true ranges, then `ATR_t = (ATR_{t-1} (w - 1) + TR_t) / w`. The warm-up
/// `t < w - 1` is **0.0**, not `NaN`, as in `ta`.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], window: usize) -> Result<Vec<f64>, DataError> {
    check_window("atr.window", window, 1)?;
    let tr = true_range(high, low, close)?;
    let mut out = vec![0.0; tr.len()];
    if tr.len() >= window {
        let w = window as f64;
        out[window - 1] = tr[..window].iter().sum::<f64>() / w;
        for t in window..tr.len() {
            out[t] = (out[t - 1] * (w - 1.0) + tr[t]) / w;
        }
    }
    Ok(out)
}

/// Log returns `ln(close_t) - ln(close_{t-1})`, `NaN` at `t = 0` (pandas
/// `np.log(close).diff()`). Prices must be positive.
pub fn log_returns(close: &[f64]) -> Result<Vec<f64>, DataError> {
    check_prices("close", close)?;
    let logs: Vec<f64> = close.iter().map(|c| c.ln()).collect();
    Ok((0..logs.len())
        .map(|t| {
            if t == 0 {
                f64::NAN
            } else {
                logs[t] - logs[t - 1]
            }
        })
        .collect())
}

/// `ta.others.DailyLogReturnIndicator`: [`log_returns`] in **percent** (`100 * log return`).
pub fn daily_log_return_percent(close: &[f64]) -> Result<Vec<f64>, DataError> {
    Ok(log_returns(close)?.into_iter().map(|r| 100.0 * r).collect())
}

/// Rolling mean over the last `window` values (`t - window + 1 ..= t`); `NaN` for
/// `t < window - 1` and where the window holds a non-finite value.
pub fn rolling_mean(values: &[f64], window: usize) -> Result<Vec<f64>, DataError> {
    check_window("rolling_mean.window", window, 1)?;
    Ok(rolling(values.len(), window, |r| {
        let x = &values[r];
        if all_finite(x) { mean(x) } else { f64::NAN }
    }))
}

/// Rolling standard deviation over the last `window` values with `ddof` degrees of freedom
/// removed (`ddof = 1`: pandas' sample deviation; `0`: population). `NaN` for
/// `t < window - 1` and where the window holds a non-finite value. `window` must exceed
/// `ddof`.
pub fn rolling_std(values: &[f64], window: usize, ddof: usize) -> Result<Vec<f64>, DataError> {
    check_window("rolling_std.window (must exceed ddof)", window, ddof + 1)?;
    Ok(rolling(values.len(), window, |r| {
        let x = &values[r];
        if all_finite(x) {
            std_dev(x, ddof)
        } else {
            f64::NAN
        }
    }))
}

/// Rolling volatility of `returns`: the sample standard deviation (`ddof = 1`) over the last
/// `window` returns, scaled by `sqrt(periods_per_year)` (pass `1.0` for per-period volatility,
/// `252.0` to annualize daily returns). Causal: the value at `t` uses returns `t - window + 1
/// ..= t`.
pub fn rolling_volatility(
    returns: &[f64],
    window: usize,
    periods_per_year: f64,
) -> Result<Vec<f64>, DataError> {
    check_window("rolling_volatility.window", window, 2)?;
    check_positive("rolling_volatility.periods_per_year", periods_per_year)?;
    let scale = periods_per_year.sqrt();
    Ok(rolling_std(returns, window, 1)?
        .into_iter()
        .map(|s| s * scale)
        .collect())
}

/// Rolling Pearson correlation of two aligned series (for example the returns of two assets)
/// over the last `window` values. Causal: the value at `t` uses both series at
/// `t - window + 1 ..= t`. `NaN` during the warm-up, where a window holds a non-finite value,
/// and where either series is constant over the window.
pub fn rolling_correlation(x: &[f64], y: &[f64], window: usize) -> Result<Vec<f64>, DataError> {
    check_window("rolling_correlation.window", window, 2)?;
    check_same_len("y", y, "x", x.len())?;
    Ok(rolling(x.len(), window, |r| {
        let (a, b) = (&x[r.clone()], &y[r]);
        if !(all_finite(a) && all_finite(b)) {
            return f64::NAN;
        }
        let (ma, mb) = (mean(a), mean(b));
        let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
        for (&u, &v) in a.iter().zip(b) {
            sab += (u - ma) * (v - mb);
            saa += (u - ma) * (u - ma);
            sbb += (v - mb) * (v - mb);
        }
        if saa > 0.0 && sbb > 0.0 {
            (sab / (saa * sbb).sqrt()).clamp(-1.0, 1.0)
        } else {
            f64::NAN
        }
    }))
}

/// `f` applied to each full trailing window `t - window + 1 ..= t`; `NaN` before the first.
fn rolling(n: usize, window: usize, mut f: impl FnMut(Range<usize>) -> f64) -> Vec<f64> {
    (0..n)
        .map(|t| {
            if t + 1 < window {
                f64::NAN
            } else {
                f(t + 1 - window..t + 1)
            }
        })
        .collect()
}

fn all_finite(x: &[f64]) -> bool {
    x.iter().all(|v| v.is_finite())
}

pub(crate) fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Two-pass standard deviation with `ddof` removed; `x.len() > ddof`.
pub(crate) fn std_dev(x: &[f64], ddof: usize) -> f64 {
    let m = mean(x);
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (x.len() - ddof) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert!(matches!(rsi(&[1.0, 2.0], 0), Err(DataError::Config(_))));
        assert!(matches!(
            rsi(&[1.0, f64::NAN], 2),
            Err(DataError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            log_returns(&[1.0, 0.0]),
            Err(DataError::NonPositive { index: 1, .. })
        ));
        assert!(matches!(
            atr(&[1.0], &[1.0, 2.0], &[1.0], 1),
            Err(DataError::LengthMismatch {
                len: 2,
                expected: 1,
                ..
            })
        ));
        assert!(matches!(
            ema(&[f64::NAN, 1.0, f64::INFINITY], 2),
            Err(DataError::NonFinite { index: 2, .. })
        ));
        assert!(rolling_std(&[1.0, 2.0], 1, 1).is_err());
        assert!(bollinger(&[1.0], 1, -1.0).is_err());
    }

    #[test]
    fn windows_longer_than_data_give_warm_up_only() {
        let close = [1.0, 2.0, 3.0];
        assert!(rsi(&close, 10).unwrap().iter().all(|v| v.is_nan()));
        assert_eq!(atr(&close, &close, &close, 10).unwrap(), vec![0.0; 3]);
        assert!(rolling_mean(&close, 4).unwrap().iter().all(|v| v.is_nan()));
    }

    #[test]
    fn correlation_of_linear_series_is_one() {
        let x: Vec<f64> = (0..10).map(|i| (i as f64).sin()).collect();
        let y: Vec<f64> = x.iter().map(|v| 3.0 * v + 1.0).collect();
        let z: Vec<f64> = x.iter().map(|v| -v).collect();
        let c = rolling_correlation(&x, &y, 4).unwrap();
        let d = rolling_correlation(&x, &z, 4).unwrap();
        assert!(c[2].is_nan());
        assert!(c[3..].iter().all(|v| (v - 1.0).abs() < 1e-12));
        assert!(d[3..].iter().all(|v| (v + 1.0).abs() < 1e-12));
        let flat = rolling_correlation(&x, &[2.0; 10], 4).unwrap();
        assert!(flat.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn volatility_scales_with_sqrt_periods() {
        let r = [0.01, -0.02, 0.015, 0.0, -0.01];
        let daily = rolling_volatility(&r, 3, 1.0).unwrap();
        let annual = rolling_volatility(&r, 3, 252.0).unwrap();
        assert!((annual[4] - daily[4] * 252f64.sqrt()).abs() < 1e-15);
        assert!((daily[2] - std_dev(&r[..3], 1)).abs() < 1e-15);
    }
}
