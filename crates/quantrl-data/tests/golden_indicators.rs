//! Indicators against `ta` 0.11.0 (`indicators.json`): every case, every indicator, every
//! index, at the file's tolerance; warm-up positions must match `first_valid_index`.

use std::collections::BTreeMap;

use quantrl_data::indicators::{
    atr, bollinger, daily_log_return_percent, log_returns, macd, rolling_std, rsi,
};
use quantrl_testkit::{Value, flat, load, name, num};

fn window(params: &Value, key: &str) -> usize {
    params[key]
        .as_u64()
        .unwrap_or_else(|| panic!("params.{key} is not an integer")) as usize
}

/// Our value of every indicator the file names, keyed by the file's names.
fn compute(case: &Value) -> BTreeMap<&'static str, Vec<f64>> {
    let p = &case["params"];
    let inputs = &case["inputs"];
    let (high, low, close) = (
        flat(&inputs["high"]),
        flat(&inputs["low"]),
        flat(&inputs["close"]),
    );
    let m = macd(
        &close,
        window(p, "macd_fast"),
        window(p, "macd_slow"),
        window(p, "macd_sign"),
    )
    .unwrap();
    let bb = bollinger(&close, window(p, "bb_window"), num(&p["bb_dev"])).unwrap();
    let lr = log_returns(&close).unwrap();
    BTreeMap::from([
        ("rsi", rsi(&close, window(p, "rsi")).unwrap()),
        ("macd", m.macd),
        ("macd_signal", m.signal),
        ("macd_diff", m.histogram),
        ("bb_hband", bb.upper),
        ("bb_mavg", bb.mavg),
        ("bb_lband", bb.lower),
        ("atr", atr(&high, &low, &close, window(p, "atr")).unwrap()),
        (
            "ta_daily_log_return",
            daily_log_return_percent(&close).unwrap(),
        ),
        (
            "log_return_rolling_std",
            rolling_std(&lr, window(p, "std_window"), 1).unwrap(),
        ),
        ("log_return", lr),
    ])
}

#[test]
fn indicators_match_ta() {
    let golden = load("indicators");
    let mut checked = 0;
    for case in golden.cases() {
        let cname = name(case);
        let tol = golden.tolerance(case, "expected");
        let ours = compute(case);
        let expected = case["expected"].as_object().expect("expected is an object");
        let first_valid = &case["expected"]["first_valid_index"];
        for (key, values) in expected {
            if key == "first_valid_index" {
                continue;
            }
            let got = ours.get(key.as_str()).unwrap_or_else(|| {
                panic!("{cname}: indicator `{key}` is not covered by this test")
            });
            let want = flat(values);
            tol.assert_all(&format!("{cname} {key}"), got, &want);
            let first = got
                .iter()
                .position(|v| !v.is_nan())
                .expect("some valid value");
            assert_eq!(
                first as u64,
                first_valid[key.as_str()].as_u64().unwrap(),
                "{cname} {key}: first valid index"
            );
            checked += 1;
        }
        assert_eq!(
            ours.len(),
            expected.len() - 1,
            "{cname}: the file no longer checks an indicator we compute"
        );
    }
    assert!(checked >= 22, "only {checked} indicator series checked");
}
