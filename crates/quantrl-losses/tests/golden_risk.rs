//! Quantile Huber (`quantile_huber.json`), CVaR (`cvar.json`) and IRMv1 (`irm.json`) in
//! float64 against their references: every case of each file, with the file's tolerance.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData};
use quantrl_losses::cvar::{
    QuantileCvar, TailConvention, cvar_empirical, cvar_quantiles, cvar_weights,
};
use quantrl_losses::irm::{IrmConfig, IrmLoss, irm_penalty, irm_penalty_linear};
use quantrl_losses::quantile::{
    QuantileHuberConfig, default_taus, quantile_huber_loss, quantile_huber_loss_2d,
};
use quantrl_testkit::{Value, flat, load, name, num, shape};

type B = Autodiff<NdArray<f64>>;

fn tensor<const D: usize>(v: &Value) -> Tensor<B, D> {
    let s: [usize; D] = shape(v).try_into().expect("rank");
    Tensor::from_data(TensorData::new(flat(v), s), &Default::default())
}

fn vals<Bk: burn::tensor::backend::Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f64> {
    t.into_data().to_vec().unwrap()
}

#[test]
fn quantile_huber_matches_sb3_contrib() {
    let golden = load("quantile_huber");
    let mut checked = 0;
    for case in golden.cases() {
        let cname = name(case);
        let tol = golden.tolerance(case, "expected");
        let exp = &case["expected"];
        let p = &case["params"];
        assert!(
            p["cum_prob"].is_null(),
            "{cname}: custom cum_prob not covered"
        );
        let config = QuantileHuberConfig {
            kappa: 1.0,
            sum_over_quantiles: p["sum_over_quantiles"].as_bool().unwrap(),
        };
        config.validate().unwrap();
        let n = p["n_quantiles"].as_u64().unwrap() as usize;
        let taus: Vec<f64> = default_taus(n).into_iter().map(f64::from).collect();
        tol.assert_all(
            &format!("{cname} cum_prob_used"),
            &taus,
            &flat(&exp["cum_prob_used"]),
        );
        let inp = &case["inputs"];
        let (loss, g_cur, g_tgt) = match shape(&inp["current_quantiles"]).len() {
            2 => {
                let cur = tensor::<2>(&inp["current_quantiles"]).require_grad();
                let tgt = tensor::<2>(&inp["target_quantiles"]).require_grad();
                let loss = quantile_huber_loss_2d(cur.clone(), tgt.clone(), None, &config);
                let grads = loss.backward();
                (
                    vals(loss),
                    vals(cur.grad(&grads).unwrap()),
                    vals(tgt.grad(&grads).unwrap()),
                )
            }
            3 => {
                let cur = tensor::<3>(&inp["current_quantiles"]).require_grad();
                let tgt = tensor::<3>(&inp["target_quantiles"]).require_grad();
                let loss = quantile_huber_loss(cur.clone(), tgt.clone(), None, &config);
                let grads = loss.backward();
                (
                    vals(loss),
                    vals(cur.grad(&grads).unwrap()),
                    vals(tgt.grad(&grads).unwrap()),
                )
            }
            r => panic!("{cname}: rank {r}"),
        };
        tol.assert_scalar(&format!("{cname} loss"), loss[0], num(&exp["loss"]));
        tol.assert_all(
            &format!("{cname} grad_current"),
            &g_cur,
            &flat(&exp["grad_current"]),
        );
        tol.assert_all(
            &format!("{cname} grad_target"),
            &g_tgt,
            &flat(&exp["grad_target"]),
        );
        checked += 1;
    }
    assert_eq!(checked, golden.cases().len());
}

#[test]
fn cvar_matches_reference_conventions() {
    let golden = load("cvar");
    let (mut quantile_cases, mut sample_cases) = (0, 0);
    for case in golden.cases() {
        let cname = name(case);
        let tol = golden.tolerance(case, "expected");
        let alphas = flat(&case["params"]["alphas"]);
        match case["kind"].as_str().unwrap() {
            "quantile_distribution" => {
                let q = tensor::<2>(&case["inputs"]["quantiles"]);
                let [_, n] = q.dims();
                for alpha in alphas {
                    let exp = &case["expected"][format!("{alpha}")];
                    assert!(exp.is_object(), "{cname}: no block for alpha {alpha}");
                    tol.assert_all(
                        &format!("{cname} a={alpha} weights_fractional"),
                        &cvar_weights(n, alpha, QuantileCvar::Fractional),
                        &flat(&exp["weights_fractional"]),
                    );
                    for (conv, key) in [
                        (QuantileCvar::Fractional, "cvar_fractional"),
                        (QuantileCvar::Ceil, "cvar_ceil"),
                        (QuantileCvar::Floor, "cvar_floor"),
                        (QuantileCvar::Midpoint, "cvar_midpoint"),
                    ] {
                        tol.assert_all(
                            &format!("{cname} a={alpha} {key}"),
                            &vals(cvar_quantiles(q.clone(), alpha, conv)),
                            &flat(&exp[key]),
                        );
                    }
                }
                quantile_cases += 1;
            }
            "empirical_sample" => {
                let r = tensor::<1>(&case["inputs"]["returns"]);
                for alpha in alphas {
                    let exp = &case["expected"][format!("{alpha}")];
                    assert!(exp.is_object(), "{cname}: no block for alpha {alpha}");
                    let (var, lower) = cvar_empirical(r.clone(), alpha, TailConvention::Lower);
                    let (_, emp) = cvar_empirical(r.clone(), alpha, TailConvention::Empyrical);
                    tol.assert_scalar(
                        &format!("{cname} a={alpha} var_lower"),
                        vals(var)[0],
                        num(&exp["var_lower"]),
                    );
                    tol.assert_scalar(
                        &format!("{cname} a={alpha} es_lower"),
                        vals(lower)[0],
                        num(&exp["es_lower"]),
                    );
                    tol.assert_scalar(
                        &format!("{cname} a={alpha} es_empyrical"),
                        vals(emp)[0],
                        num(&exp["es_empyrical"]),
                    );
                }
                sample_cases += 1;
            }
            k => panic!("{cname}: unknown kind {k}"),
        }
    }
    assert!(quantile_cases >= 1 && sample_cases >= 1);
    assert_eq!(quantile_cases + sample_cases, golden.cases().len());
}

#[test]
fn irm_matches_reference_double_backprop() {
    let golden = load("irm");
    for case in golden.cases() {
        let cname = name(case);
        let tol = golden.tolerance(case, "expected");
        let exp = &case["expected"];
        let envs = case["inputs"]["envs"].as_array().unwrap();
        let labels: Vec<usize> = envs
            .iter()
            .enumerate()
            .flat_map(|(e, env)| {
                let n = shape(env.get("z").unwrap_or(&env["x"]))[0];
                std::iter::repeat_n(e, n)
            })
            .collect();
        let cat = |key: &str| -> Vec<f64> { envs.iter().flat_map(|e| flat(&e[key])).collect() };
        match case["kind"].as_str().unwrap() {
            "scalar_dummy" => {
                let p = &case["params"];
                let config = IrmConfig {
                    loss: match p["loss"].as_str().unwrap() {
                        "bce" => IrmLoss::Bce,
                        "mse" => IrmLoss::Mse,
                        l => panic!("{cname}: loss {l}"),
                    },
                    penalty_weight: num(&p["penalty_weight"]),
                };
                config.validate().unwrap();
                let n = labels.len();
                let d = Default::default();
                let z =
                    Tensor::<B, 1>::from_data(TensorData::new(cat("z"), [n]), &d).require_grad();
                let y = Tensor::<B, 1>::from_data(TensorData::new(cat("y"), [n]), &d);
                let terms = irm_penalty(z.clone(), y.clone(), &labels, &config);
                assert_eq!(terms.env_labels, (0..envs.len()).collect::<Vec<_>>());
                let per_env = exp["per_env"].as_array().unwrap();
                let field = |k: &str| per_env.iter().map(|e| num(&e[k])).collect::<Vec<_>>();
                tol.assert_all(
                    &format!("{cname} nll"),
                    &vals(terms.nll_per_env.clone()),
                    &field("nll"),
                );
                tol.assert_all(
                    &format!("{cname} grad_w"),
                    &vals(terms.grad_w_per_env.clone()),
                    &field("grad_w"),
                );
                tol.assert_all(
                    &format!("{cname} penalty"),
                    &vals(terms.penalty_per_env.clone()),
                    &field("penalty"),
                );
                tol.assert_scalar(
                    &format!("{cname} penalty_mean"),
                    vals(terms.penalty_mean.clone())[0],
                    num(&exp["penalty_mean"]),
                );
                tol.assert_scalar(
                    &format!("{cname} penalty_sum"),
                    vals(terms.penalty_sum.clone())[0],
                    num(&exp["penalty_sum"]),
                );
                tol.assert_scalar(
                    &format!("{cname} nll_mean"),
                    vals(terms.nll_mean.clone())[0],
                    num(&exp["nll_mean"]),
                );
                tol.assert_scalar(
                    &format!("{cname} objective"),
                    vals(terms.objective.clone())[0],
                    num(&exp["objective"]),
                );
                let grads = terms.objective.backward();
                tol.assert_all(
                    &format!("{cname} dobjective_dz"),
                    &vals(z.grad(&grads).unwrap()),
                    &per_env
                        .iter()
                        .flat_map(|e| flat(&e["dobjective_dz"]))
                        .collect::<Vec<_>>(),
                );
                // d penalty_e / d z_e: differentiate each environment's penalty alone.
                let mut offset = 0;
                for (e, env) in per_env.iter().enumerate() {
                    let z = Tensor::<B, 1>::from_data(TensorData::new(cat("z"), [n]), &d)
                        .require_grad();
                    let terms = irm_penalty(z.clone(), y.clone(), &labels, &config);
                    let pe = terms.penalty_per_env.narrow(0, e, 1);
                    let g = vals(z.grad(&pe.backward()).unwrap());
                    let expected = flat(&env["dpenalty_dz"]);
                    tol.assert_all(
                        &format!("{cname} env {e} dpenalty_dz"),
                        &g[offset..offset + expected.len()],
                        &expected,
                    );
                    assert!(
                        g[..offset]
                            .iter()
                            .chain(&g[offset + expected.len()..])
                            .all(|&x| x == 0.0)
                    );
                    offset += expected.len();
                }
            }
            "synthetic_vector_dummy" => {
                let dim = case["params"]["d"].as_u64().unwrap() as usize;
                let n = labels.len();
                let d = Default::default();
                let phi = tensor::<2>(&case["inputs"]["phi"]).require_grad();
                let x = Tensor::<B, 2>::from_data(TensorData::new(cat("x"), [n, dim]), &d);
                let y = Tensor::<B, 1>::from_data(TensorData::new(cat("y"), [n]), &d);
                let terms = irm_penalty_linear(x.matmul(phi.clone()), y, &labels);
                let per_env = exp["per_env"].as_array().unwrap();
                tol.assert_all(
                    &format!("{cname} error"),
                    &vals(terms.error_per_env.clone()),
                    &per_env.iter().map(|e| num(&e["error"])).collect::<Vec<_>>(),
                );
                tol.assert_all(
                    &format!("{cname} grad_w"),
                    &vals(terms.grad_w_per_env.clone()),
                    &per_env
                        .iter()
                        .flat_map(|e| flat(&e["grad_w"]))
                        .collect::<Vec<_>>(),
                );
                tol.assert_all(
                    &format!("{cname} penalty"),
                    &vals(terms.penalty_per_env.clone()),
                    &per_env
                        .iter()
                        .map(|e| num(&e["penalty"]))
                        .collect::<Vec<_>>(),
                );
                tol.assert_scalar(
                    &format!("{cname} penalty_sum"),
                    vals(terms.penalty_sum.clone())[0],
                    num(&exp["penalty_sum"]),
                );
                let grads = terms.penalty_sum.backward();
                tol.assert_all(
                    &format!("{cname} dpenalty_sum_dphi"),
                    &vals(phi.grad(&grads).unwrap()),
                    &flat(&exp["dpenalty_sum_dphi"]),
                );
            }
            k => panic!("{cname}: unknown kind {k}"),
        }
    }
}
