//! The cost model shared by training environments and backtests.

use quantrl_core::{ConfigError, check_non_negative, check_positive};
use serde::{Deserialize, Serialize};

/// Trading and holding costs. Every rate is non-negative, so no cost is ever negative.
///
/// For a trade of `q` shares at execution price `p` (notional `|q| p`), with `s`, `i` the
/// adversary's spread and impact multipliers (1 by default):
///
/// - fee: `fee_bps * 1e-4 * |q| p`;
/// - half-spread: `half_spread_bps * 1e-4 * s * |q| p` (buys pay above, sells receive below
///   the quoted price);
/// - square-root market impact where volume exists:
///   `impact_coef * i * sigma * sqrt(|q| / adv) * |q| p`, with `sigma` the rolling standard
///   deviation of daily log returns and `adv` the rolling mean volume, both up to the decision
///   bar (Almgren et al. 2005; Torre's square-root law). Where the data has no volume (or the
///   mean volume is zero) the documented fallback is a linear rate:
///   `impact_fallback_bps * 1e-4 * i * |q| p`;
/// - random slippage: `|z| * slippage_bps_std * 1e-4 * |q| p` with `z ~ N(0, 1)` from the
///   environment's seeded generator (always against the trader).
///
/// Holding costs per bar, on the book after the trade: borrow on short positions
/// `borrow_bps_per_year * 1e-4 / periods_per_year * short notional`, and financing of negative
/// cash (leverage) `financing_bps_per_year * 1e-4 / periods_per_year * |cash|`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostModel {
    /// Proportional commission in basis points of traded notional.
    pub fee_bps: f64,
    /// Half the bid-ask spread in basis points of the price.
    pub half_spread_bps: f64,
    /// Coefficient of the square-root impact law (dimensionless, typically 0.1 to 1).
    pub impact_coef: f64,
    /// Linear impact in basis points where there is no volume to size the square-root law.
    pub impact_fallback_bps: f64,
    /// Annual borrow fee for short positions, in basis points of short notional.
    pub borrow_bps_per_year: f64,
    /// Annual financing rate for negative cash, in basis points.
    pub financing_bps_per_year: f64,
    /// Standard deviation of the random slippage, in basis points (0 disables it).
    pub slippage_bps_std: f64,
    /// Bars per year (252 for daily data), to turn annual rates into per-bar rates.
    pub periods_per_year: f64,
}

impl Default for CostModel {
    /// Costs of a liquid US equity traded by a small fund: 1 bp fee, 1 bp half-spread,
    /// square-root impact with coefficient 0.1 (2 bp linear where there is no volume), 50 bp a
    /// year to borrow, 200 bp a year financing, no random slippage, daily bars.
    fn default() -> Self {
        Self {
            fee_bps: 1.0,
            half_spread_bps: 1.0,
            impact_coef: 0.1,
            impact_fallback_bps: 2.0,
            borrow_bps_per_year: 50.0,
            financing_bps_per_year: 200.0,
            slippage_bps_std: 0.0,
            periods_per_year: 252.0,
        }
    }
}

/// What one step cost, by component (all `>= 0`, in cash units).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CostBreakdown {
    /// Commission.
    pub fee: f64,
    /// Half-spread.
    pub spread: f64,
    /// Market impact.
    pub impact: f64,
    /// Random slippage.
    pub slippage: f64,
    /// Borrow fee on shorts.
    pub borrow: f64,
    /// Financing of negative cash.
    pub financing: f64,
}

impl CostBreakdown {
    /// Sum of every component.
    #[inline]
    pub fn total(&self) -> f64 {
        self.fee + self.spread + self.impact + self.slippage + self.borrow + self.financing
    }
}

impl CostModel {
    /// No costs at all (for tests and frictionless baselines).
    pub fn zero() -> Self {
        Self {
            fee_bps: 0.0,
            half_spread_bps: 0.0,
            impact_coef: 0.0,
            impact_fallback_bps: 0.0,
            borrow_bps_per_year: 0.0,
            financing_bps_per_year: 0.0,
            slippage_bps_std: 0.0,
            periods_per_year: 252.0,
        }
    }

    /// Check every rate is finite and non-negative and `periods_per_year > 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("costs.fee_bps", self.fee_bps)?;
        check_non_negative("costs.half_spread_bps", self.half_spread_bps)?;
        check_non_negative("costs.impact_coef", self.impact_coef)?;
        check_non_negative("costs.impact_fallback_bps", self.impact_fallback_bps)?;
        check_non_negative("costs.borrow_bps_per_year", self.borrow_bps_per_year)?;
        check_non_negative("costs.financing_bps_per_year", self.financing_bps_per_year)?;
        check_non_negative("costs.slippage_bps_std", self.slippage_bps_std)?;
        check_positive("costs.periods_per_year", self.periods_per_year)
    }

    /// The costs of trading `shares` (signed) at `price`: fee, half-spread, impact and
    /// slippage (borrow and financing are zero).
    ///
    /// `sigma` and `adv` are the impact model's inputs for this asset (see the type docs),
    /// `abs_z` a draw of `|N(0, 1)|` (used only when slippage is on), `spread_mult` and
    /// `impact_mult` the adversary's multipliers. Branch-free apart from the choice of impact
    /// law, so that a loop over assets vectorizes.
    #[inline(always)]
    pub fn trade_costs(
        &self,
        shares: f64,
        price: f64,
        sigma: f64,
        adv: Option<f64>,
        abs_z: f64,
        spread_mult: f64,
        impact_mult: f64,
    ) -> CostBreakdown {
        let q = shares.abs();
        let notional = q * price;
        CostBreakdown {
            fee: self.fee_bps * 1e-4 * notional,
            spread: self.half_spread_bps * 1e-4 * spread_mult * notional,
            impact: match adv {
                Some(v) if v > 0.0 => {
                    self.impact_coef * impact_mult * sigma * (q / v).sqrt() * notional
                }
                _ => self.impact_fallback_bps * 1e-4 * impact_mult * notional,
            },
            slippage: abs_z * self.slippage_bps_std * 1e-4 * notional,
            borrow: 0.0,
            financing: 0.0,
        }
    }

    /// Add the costs of trading `shares` (signed) at `price` ([`CostModel::trade_costs`]) to
    /// `out`.
    #[inline(always)]
    pub fn add_trade(
        &self,
        shares: f64,
        price: f64,
        sigma: f64,
        adv: Option<f64>,
        abs_z: f64,
        spread_mult: f64,
        impact_mult: f64,
        out: &mut CostBreakdown,
    ) {
        let one = self.trade_costs(shares, price, sigma, adv, abs_z, spread_mult, impact_mult);
        out.fee += one.fee;
        out.spread += one.spread;
        out.impact += one.impact;
        out.slippage += one.slippage;
    }

    /// Add one bar's holding costs for `short_notional` of short positions and `cash` to
    /// `out`.
    #[inline(always)]
    pub fn add_holding(&self, short_notional: f64, cash: f64, out: &mut CostBreakdown) {
        let per_bar = 1e-4 / self.periods_per_year;
        out.borrow += self.borrow_bps_per_year * per_bar * short_notional;
        out.financing += self.financing_bps_per_year * per_bar * (-cash).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_by_hand() {
        let c = CostModel {
            fee_bps: 10.0,
            half_spread_bps: 5.0,
            impact_coef: 0.5,
            impact_fallback_bps: 20.0,
            borrow_bps_per_year: 252.0,
            financing_bps_per_year: 504.0,
            slippage_bps_std: 4.0,
            periods_per_year: 252.0,
        };
        let mut out = CostBreakdown::default();
        // Sell 100 shares at 50: notional 5000; impact 0.5 * 0.02 * sqrt(100/10000) * 5000 = 5.
        c.add_trade(-100.0, 50.0, 0.02, Some(10_000.0), 0.5, 2.0, 1.0, &mut out);
        assert!((out.fee - 5.0).abs() < 1e-12);
        assert!((out.spread - 5.0).abs() < 1e-12); // 5 bp x 2 x 5000
        assert!((out.impact - 5.0).abs() < 1e-12);
        assert!((out.slippage - 1.0).abs() < 1e-12); // 0.5 x 4 bp x 5000
        // No volume: linear fallback 20 bp x 5000 = 10.
        let mut out = CostBreakdown::default();
        c.add_trade(100.0, 50.0, 0.02, None, 0.0, 1.0, 1.0, &mut out);
        assert!((out.impact - 10.0).abs() < 1e-12);
        // Holding: 1 bp per bar on 10_000 short, 2 bp per bar on 5_000 borrowed cash.
        let mut out = CostBreakdown::default();
        c.add_holding(10_000.0, -5_000.0, &mut out);
        assert!((out.borrow - 1.0).abs() < 1e-12);
        assert!((out.financing - 1.0).abs() < 1e-12);
        c.add_holding(0.0, 5_000.0, &mut out);
        assert!(
            (out.financing - 1.0).abs() < 1e-12,
            "positive cash costs nothing"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let c = CostModel {
            fee_bps: -1.0,
            ..CostModel::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("costs.fee_bps")
        );
        let c = CostModel {
            periods_per_year: 0.0,
            ..CostModel::default()
        };
        assert!(c.validate().is_err());
        CostModel::default().validate().unwrap();
        CostModel::zero().validate().unwrap();
    }
}
