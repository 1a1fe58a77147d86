//! GAE against Stable-Baselines3 2.9.2 (`gae.json`): every case, in float32 (SB3's own
//! output) and float64.

use quantrl_algos::gae::{GaeFloat, compute_gae};
use quantrl_testkit::{Value, flat, load, name, num, shape};

fn run<T: GaeFloat + Into<f64>>(case: &Value, conv: fn(f64) -> T) -> (Vec<f64>, Vec<f64>) {
    let inp = &case["inputs"];
    let p = &case["params"];
    let [n_steps, n_envs] = shape(&inp["rewards"])[..] else {
        panic!("rewards shape")
    };
    let v = |k: &str| flat(&inp[k]).into_iter().map(conv).collect::<Vec<T>>();
    let n = n_steps * n_envs;
    let (mut adv, mut ret) = (vec![conv(0.0); n], vec![conv(0.0); n]);
    compute_gae(
        &v("rewards"),
        &v("values"),
        &v("episode_starts"),
        &v("last_values"),
        &v("dones"),
        num(&p["gamma"]),
        num(&p["gae_lambda"]),
        n_envs,
        &mut adv,
        &mut ret,
    );
    (
        adv.into_iter().map(Into::into).collect(),
        ret.into_iter().map(Into::into).collect(),
    )
}

#[test]
fn gae_matches_sb3() {
    let golden = load("gae");
    for case in golden.cases() {
        let cname = name(case);
        let (adv, ret) = run::<f32>(case, |x| x as f32);
        let tol = golden.tolerance(case, "expected");
        tol.assert_all(
            &format!("{cname} advantages (f32)"),
            &adv,
            &flat(&case["expected"]["advantages"]),
        );
        tol.assert_all(
            &format!("{cname} returns (f32)"),
            &ret,
            &flat(&case["expected"]["returns"]),
        );
        let (adv, ret) = run::<f64>(case, |x| x);
        let tol = golden.tolerance(case, "expected_float64");
        tol.assert_all(
            &format!("{cname} advantages (f64)"),
            &adv,
            &flat(&case["expected_float64"]["advantages"]),
        );
        tol.assert_all(
            &format!("{cname} returns (f64)"),
            &ret,
            &flat(&case["expected_float64"]["returns"]),
        );
    }
}
