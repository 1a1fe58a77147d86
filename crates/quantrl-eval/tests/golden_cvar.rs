//! Empirical VaR and expected shortfall against numpy and empyrical-reloaded 0.7.1
//! (`cvar.json`, the `empirical_sample` cases; the quantile-distribution cases belong to the
//! CVaR of a distributional critic, not to a return series, and are skipped here).

use quantrl_eval::{QuantileMethod, TailConvention, empirical_tail, value_at_risk};
use quantrl_testkit::{flat, load, name, num};

#[test]
fn empirical_tail_matches_numpy_and_empyrical() {
    let golden = load("cvar");
    let mut cases = 0;
    for case in golden.cases() {
        match case["kind"].as_str() {
            Some("empirical_sample") => {}
            Some("quantile_distribution") => continue,
            other => panic!("{}: unknown kind {other:?}", name(case)),
        }
        cases += 1;
        let cname = name(case);
        let r = flat(&case["inputs"]["returns"]);
        let tol = golden.tolerance(case, "expected");
        let by_alpha = case["expected"].as_object().expect("expected by alpha");
        let alphas = flat(&case["params"]["alphas"]);
        assert_eq!(by_alpha.len(), alphas.len(), "{cname}: one block per alpha");
        for (key, want) in by_alpha {
            let alpha: f64 = key.parse().expect("alpha key");
            assert!(
                alphas.contains(&alpha),
                "{cname}: alpha {key} not in params"
            );
            let what = format!("{cname} alpha {key}");
            let lower = empirical_tail(&r, alpha, TailConvention::Lower).unwrap();
            let empyrical = empirical_tail(&r, alpha, TailConvention::Empyrical).unwrap();
            tol.assert_scalar(
                &format!("{what} var_lower"),
                lower.value_at_risk,
                num(&want["var_lower"]),
            );
            let var = value_at_risk(&r, alpha, QuantileMethod::Lower).unwrap();
            assert_eq!(var, lower.value_at_risk, "{what}: value_at_risk(Lower)");
            assert_eq!(
                empyrical.value_at_risk, lower.value_at_risk,
                "{what}: same lower VaR"
            );
            tol.assert_scalar(
                &format!("{what} es_lower"),
                lower.expected_shortfall,
                num(&want["es_lower"]),
            );
            assert_eq!(
                lower.n_tail as u64,
                want["n_tail_lower"].as_u64().unwrap(),
                "{what} n_tail_lower"
            );
            tol.assert_scalar(
                &format!("{what} es_empyrical"),
                empyrical.expected_shortfall,
                num(&want["es_empyrical"]),
            );
            assert_eq!(
                empyrical.n_tail as u64,
                want["n_tail_empyrical"].as_u64().unwrap(),
                "{what} n_tail_empyrical"
            );
            let linear = value_at_risk(&r, alpha, QuantileMethod::Linear).unwrap();
            tol.assert_scalar(
                &format!("{what} var_linear"),
                linear,
                num(&want["var_linear"]),
            );
        }
    }
    assert!(cases >= 2, "only {cases} empirical cases");
}
