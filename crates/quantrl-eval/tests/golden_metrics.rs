//! Metrics against empyrical-reloaded 0.7.1 (`metrics.json`): every case, every metric.

use quantrl_eval::{
    TRADING_DAYS_PER_YEAR, annual_return, annual_volatility, calmar_ratio, cumulative_return,
    downside_risk, max_drawdown, sharpe_ratio, sortino_ratio,
};
use quantrl_testkit::{Value, flat, load, name, num};

/// The annualization factor of a case: `annualization` when given, else empyrical's for the
/// `period`.
fn annualization(params: &Value) -> f64 {
    match params.get("annualization").filter(|v| !v.is_null()) {
        Some(a) => num(a),
        None => match params["period"].as_str() {
            Some("daily") | None => TRADING_DAYS_PER_YEAR,
            Some("weekly") => 52.0,
            Some("monthly") => 12.0,
            Some("quarterly") => 4.0,
            Some("yearly") => 1.0,
            Some(other) => panic!("unknown period `{other}`"),
        },
    }
}

/// A per-period rate parameter, 0 when absent.
fn rate(params: &Value, key: &str) -> f64 {
    params.get(key).map_or(0.0, num)
}

#[test]
fn metrics_match_empyrical() {
    let golden = load("metrics");
    let mut checked = 0;
    for case in golden.cases() {
        let cname = name(case);
        let params = &case["params"];
        let a = annualization(params);
        let rf = rate(params, "risk_free");
        let req = rate(params, "required_return");
        let r = flat(&case["inputs"]["returns"]);
        let tol = golden.tolerance(case, "expected");
        let expected = case["expected"].as_object().expect("expected is an object");
        assert!(!expected.is_empty(), "{cname}: no expected metrics");
        for (metric, want) in expected {
            let got = match metric.as_str() {
                "sharpe_ratio" => sharpe_ratio(&r, rf, a),
                "sortino_ratio" => sortino_ratio(&r, req, a),
                "downside_risk" => downside_risk(&r, req, a),
                "max_drawdown" => max_drawdown(&r),
                "calmar_ratio" => calmar_ratio(&r, a),
                "annual_return" => annual_return(&r, a),
                "annual_volatility" => annual_volatility(&r, a),
                "cum_returns_final" => cumulative_return(&r),
                other => panic!("{cname}: no implementation checks metric `{other}`"),
            }
            .unwrap_or_else(|e| panic!("{cname} {metric}: {e}"));
            tol.assert_scalar(&format!("{cname} {metric}"), got, num(want));
            checked += 1;
        }
    }
    assert!(
        checked >= 8 * golden.cases().len(),
        "only {checked} values checked"
    );
}
