//! Trading activity from a series of positions.
//!
//! `positions[t]` is the position held over period `t` as a fraction of the portfolio value
//! (a weight: 1 = fully long, -0.5 = half short, 0 = flat), so `positions[t]` earns
//! `returns[t]`. Leverage above 1 is allowed.

use crate::error::{EvalError, check_series};

/// Average one-way turnover per period: `(1/n) sum_t |w_t - w_{t-1}|`, with `w_{-1} = 0`.
///
/// The book starts flat, so building the first position counts as trading (it pays costs
/// like any other trade); closing the last one does not, since the series ends holding it.
/// Multiply by the annualization factor for a turnover per year.
///
/// ```
/// // Buy 1, hold, flip to -1 (trade 2), go flat (trade 1): (1 + 0 + 2 + 1) / 4.
/// let t = quantrl_eval::turnover(&[1.0, 1.0, -1.0, 0.0])?;
/// assert_eq!(t, 1.0);
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
pub fn turnover(positions: &[f64]) -> Result<f64, EvalError> {
    check_series("positions", positions)?;
    let mut previous = 0.0;
    let mut traded = 0.0;
    for &w in positions {
        traded += (w - previous).abs();
        previous = w;
    }
    Ok(traded / positions.len() as f64)
}

/// Average gross exposure: `(1/n) sum_t |w_t|`, the mean absolute position.
///
/// 1 for a strategy always fully invested (long or short), 0 for one always flat; the
/// fraction of time in the market when positions are only 0 or +/-1.
///
/// ```
/// let e = quantrl_eval::exposure(&[1.0, 0.0, -0.5, 0.5])?;
/// assert_eq!(e, 0.5);
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
pub fn exposure(positions: &[f64]) -> Result<f64, EvalError> {
    check_series("positions", positions)?;
    Ok(positions.iter().map(|w| w.abs()).sum::<f64>() / positions.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_positions_are_errors() {
        assert_eq!(
            turnover(&[]),
            Err(EvalError::EmptySeries {
                series: "positions"
            })
        );
        assert!(matches!(
            exposure(&[0.5, f64::INFINITY]),
            Err(EvalError::NonFinite {
                series: "positions",
                index: 1,
                ..
            })
        ));
    }

    #[test]
    fn holding_still_has_no_turnover_after_entry() {
        assert_eq!(turnover(&[0.0; 10]).unwrap(), 0.0);
        assert_eq!(turnover(&[0.5; 10]).unwrap(), 0.05);
        assert_eq!(exposure(&[-1.0; 3]).unwrap(), 1.0);
    }
}
