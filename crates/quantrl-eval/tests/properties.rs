//! Invariants of the metrics on random return series (proptest).

use proptest::prelude::*;
use quantrl_eval::{
    QuantileMethod, TRADING_DAYS_PER_YEAR, TailConvention, annual_return, cumulative_return,
    downside_risk, empirical_tail, exposure, information_ratio, max_drawdown, normal_cdf,
    normal_inv_cdf, probabilistic_sharpe_ratio, sharpe_ratio, sortino_ratio, turnover,
    value_at_risk,
};

const A: f64 = TRADING_DAYS_PER_YEAR;
const CONVENTIONS: [TailConvention; 2] = [TailConvention::Lower, TailConvention::Empyrical];

/// Daily returns between -99% and +100%, some of them tied (rounded to 0.5%).
fn returns(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    let value = prop_oneof![
        3 => -0.99f64..1.0,
        1 => (-20i32..20).prop_map(|k| k as f64 * 0.005),
    ];
    prop::collection::vec(value, 1..max_len)
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn rel_close(a: f64, b: f64, rtol: f64) -> bool {
    (a - b).abs() <= rtol * a.abs().max(b.abs()).max(1e-300)
}

proptest! {
    #[test]
    fn expected_shortfall_is_below_var_and_mean(r in returns(200), alpha in 0.001f64..0.999) {
        for convention in CONVENTIONS {
            let tail = empirical_tail(&r, alpha, convention).unwrap();
            let slack = 1e-12;
            prop_assert!(tail.expected_shortfall <= tail.value_at_risk + slack);
            prop_assert!(tail.expected_shortfall <= mean(&r) + slack);
            prop_assert!(tail.n_tail >= 1 && tail.n_tail <= r.len());
        }
        let lower = empirical_tail(&r, alpha, TailConvention::Lower).unwrap();
        let empyrical = empirical_tail(&r, alpha, TailConvention::Empyrical).unwrap();
        // Ties at the VaR only ever add values equal to it to the lower tail.
        prop_assert!(lower.n_tail >= empyrical.n_tail);
        prop_assert!(lower.expected_shortfall >= empyrical.expected_shortfall - 1e-12);
    }

    #[test]
    fn tail_measures_are_monotone_in_alpha(
        r in returns(200),
        a1 in 0.001f64..0.999,
        a2 in 0.001f64..0.999,
    ) {
        let (lo, hi) = if a1 <= a2 { (a1, a2) } else { (a2, a1) };
        for convention in CONVENTIONS {
            let small = empirical_tail(&r, lo, convention).unwrap();
            let large = empirical_tail(&r, hi, convention).unwrap();
            prop_assert!(small.expected_shortfall <= large.expected_shortfall + 1e-12);
            prop_assert!(small.value_at_risk <= large.value_at_risk);
        }
        for method in [QuantileMethod::Lower, QuantileMethod::Linear] {
            let small = value_at_risk(&r, lo, method).unwrap();
            let large = value_at_risk(&r, hi, method).unwrap();
            prop_assert!(small <= large + 1e-15);
        }
    }

    #[test]
    fn linear_var_lies_between_neighbouring_order_statistics(
        r in returns(200),
        alpha in 0.001f64..0.999,
    ) {
        let linear = value_at_risk(&r, alpha, QuantileMethod::Linear).unwrap();
        let min = r.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(linear >= value_at_risk(&r, alpha, QuantileMethod::Lower).unwrap());
        prop_assert!((min..=max).contains(&linear));
    }

    #[test]
    fn max_drawdown_is_a_fraction_in_minus_one_to_zero(r in returns(300)) {
        let mdd = max_drawdown(&r).unwrap();
        prop_assert!((-1.0..=0.0).contains(&mdd), "mdd = {}", mdd);
        // A first-day loss alone is a drawdown of that size (anchored path).
        prop_assert!(mdd <= r[0].min(0.0) + 1e-15);
    }

    #[test]
    fn sharpe_and_sortino_are_scale_invariant(r in returns(100), scale in 0.01f64..100.0) {
        let scaled: Vec<f64> = r.iter().map(|x| x * scale).collect();
        let s = sharpe_ratio(&r, 0.0, A).unwrap();
        let s_scaled = sharpe_ratio(&scaled, 0.0, A).unwrap();
        if s.is_finite() {
            prop_assert!(rel_close(s, s_scaled, 1e-9), "{} vs {}", s, s_scaled);
        }
        let so = sortino_ratio(&r, 0.0, A).unwrap();
        let so_scaled = sortino_ratio(&scaled, 0.0, A).unwrap();
        if so.is_finite() {
            prop_assert!(rel_close(so, so_scaled, 1e-9), "{} vs {}", so, so_scaled);
        }
        // The downside risk scales with the returns.
        let d = downside_risk(&r, 0.0, A).unwrap();
        prop_assert!(rel_close(d * scale, downside_risk(&scaled, 0.0, A).unwrap(), 1e-12));
    }

    #[test]
    fn information_ratio_against_cash_is_the_sharpe_ratio(r in returns(100)) {
        let cash = vec![0.0; r.len()];
        let ir = information_ratio(&r, &cash, A).unwrap();
        let s = sharpe_ratio(&r, 0.0, A).unwrap();
        prop_assert!(ir == s || (ir.is_nan() && s.is_nan()));
    }

    #[test]
    fn annual_return_compounds_the_cumulative_return(
        r in prop::collection::vec(-0.1f64..0.1, 1..300),
    ) {
        let growth = 1.0 + cumulative_return(&r).unwrap();
        let annual_growth = 1.0 + annual_return(&r, A).unwrap();
        let years = r.len() as f64 / A;
        let back = annual_growth.powf(years);
        // `annual_return` rounds 1 + annual to an absolute ulp; raising it back to the power
        // `years` turns that into a relative error of years * ulp / (1 + annual) (large
        // after a short, steep loss, where 1 + annual is tiny).
        let tol = 1e-12 + 4.0 * f64::EPSILON * years / annual_growth;
        prop_assert!(rel_close(back, growth, tol), "{} vs {}", back, growth);
    }

    #[test]
    fn psr_is_a_probability_decreasing_in_the_benchmark(
        r in returns(100),
        b1 in -1.0f64..1.0,
        b2 in -1.0f64..1.0,
    ) {
        let (lo, hi) = if b1 <= b2 { (b1, b2) } else { (b2, b1) };
        let p_lo = probabilistic_sharpe_ratio(&r, 0.0, lo).unwrap();
        let p_hi = probabilistic_sharpe_ratio(&r, 0.0, hi).unwrap();
        if !p_lo.is_nan() {
            prop_assert!((0.0..=1.0).contains(&p_lo) && (0.0..=1.0).contains(&p_hi));
            prop_assert!(p_hi <= p_lo);
        }
    }

    #[test]
    fn turnover_and_exposure_are_bounded(w in prop::collection::vec(-2.0f64..2.0, 1..100)) {
        let t = turnover(&w).unwrap();
        let e = exposure(&w).unwrap();
        let max_abs = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        prop_assert!((0.0..=max_abs + 1e-15).contains(&e));
        // Each step trades at most |w_t| + |w_{t-1}|.
        prop_assert!(t >= 0.0 && t <= 2.0 * e + 1e-12);
    }

    #[test]
    fn normal_inverse_cdf_inverts_the_cdf(p in 1e-12f64..(1.0 - 1e-12)) {
        let x = normal_inv_cdf(p);
        prop_assert!(rel_close(normal_cdf(x), p, 1e-12) || (normal_cdf(x) - p).abs() < 1e-16);
    }
}
