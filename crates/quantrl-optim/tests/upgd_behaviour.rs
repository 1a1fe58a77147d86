//! UPGD behaviour beyond the reference cases: the guard on a non-positive global maximum,
//! parameter groups, records, statistics, the second-order option and the noise sources.

use burn::backend::{Autodiff, NdArray};
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, DoublePrecisionSettings, Recorder};
use burn::tensor::{Tensor, TensorData};
use quantrl_optim::upgd::SCALED_QUANTILE_LEVELS;
use quantrl_optim::{
    BackendNoise, ParamGroup, Perturbation, ReplayNoise, RngNoise, Upgd, UpgdSettings,
    UtilityOrder, UtilityScope,
};

type B = Autodiff<NdArray<f64>>;

/// `Linear(2, 1)` with weight `w` and bias `b`.
fn linear(w: [f64; 2], b: f64) -> Linear<B> {
    let d = Default::default();
    let mut m: Linear<B> = LinearConfig::new(2, 1).init(&d);
    m.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w.to_vec(), [2, 1]), &d));
    m.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![b], [1]),
        &d,
    )));
    m
}

/// Gradients of `sum(x W + b)` at `x = [[3, 4]]`: `dW = [3, 4]`, `db = 1`.
fn grads(m: &Linear<B>) -> GradientsParams {
    let x = Tensor::<B, 2>::from_data(TensorData::new(vec![3.0, 4.0], [1, 2]), &Default::default());
    GradientsParams::from_grads(m.forward(x).sum().backward(), m)
}

fn params(m: &Linear<B>) -> Vec<f64> {
    let mut v: Vec<f64> = m.weight.val().into_data().to_vec().unwrap();
    v.extend(
        m.bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .to_vec::<f64>()
            .unwrap(),
    );
    v
}

fn plain(scope: UtilityScope) -> UpgdSettings {
    UpgdSettings {
        weight_decay: 0.0,
        beta_utility: 0.9,
        sigma: 0.0,
        scope,
        perturbation: Perturbation::Protected,
        utility_order: UtilityOrder::FirstOrder,
        adaptive: None,
        step_size_factor: 1.0,
    }
}

#[test]
fn a_non_positive_global_max_protects_nothing_instead_of_dividing_by_it() {
    // p > 0 and g > 0 everywhere: every utility -g p is negative, so the max is negative.
    let m = linear([1.0, 2.0], 0.5);
    let g = grads(&m);
    let mut optim = plain(UtilityScope::Global).init::<B, _>(ReplayNoise::new());
    let m = optim.step(0.1, m, g);
    assert!(optim.last_global_max().unwrap() < 0.0);
    // s = 0: the full gradient step.
    let expected = [1.0 - 0.3, 2.0 - 0.4, 0.5 - 0.1];
    for (a, e) in params(&m).iter().zip(expected) {
        assert!((a - e).abs() < 1e-15, "{a} vs {e}");
    }
    let stats = optim.utility_stats().unwrap();
    assert_eq!(stats.fraction_protected, 0.0);

    // All parameters zero: every utility and the max are 0; s = sigmoid(0) = 1/2, no NaN.
    let m = linear([0.0, 0.0], 0.0);
    let g = grads(&m);
    let mut optim = plain(UtilityScope::Global).init::<B, _>(ReplayNoise::new());
    let m = optim.step(0.1, m, g);
    assert_eq!(optim.last_global_max().unwrap(), 0.0);
    let expected = [-0.15, -0.2, -0.05];
    for (a, e) in params(&m).iter().zip(expected) {
        assert!((a - e).abs() < 1e-15, "{a} vs {e}");
    }
}

#[test]
fn the_global_max_is_taken_over_all_parameters_before_any_update() {
    // Utilities after one step with beta 0.9: (1 - 0.9) * (-g p) = 0.1 * [3, 8, 1] (p < 0).
    let m = linear([-1.0, -2.0], -1.0);
    let g = grads(&m);
    let mut optim = plain(UtilityScope::Global).init::<B, _>(ReplayNoise::new());
    let after = params(&optim.step(0.01, m, g));
    let max = 0.8;
    assert!((optim.last_global_max().unwrap() - max).abs() < 1e-15);
    let bc = 1.0 - 0.9;
    for ((p, gr), a) in [(-1.0f64, 3.0f64), (-2.0, 4.0), (-1.0, 1.0)]
        .iter()
        .zip(after)
    {
        let u_hat: f64 = 0.1 * (-gr * p) / bc;
        let s = 1.0 / (1.0 + (-u_hat / max).exp());
        let e = p - 0.01 * gr * (1.0 - s);
        assert!((a - e).abs() < 1e-15, "{a} vs {e}");
    }
    let stats = optim.utility_stats().unwrap();
    assert_eq!(stats.n_elements, 3);
    assert_eq!(stats.fraction_protected, 1.0);
    assert!((stats.global_max.unwrap() - max).abs() < 1e-15);
    assert!((stats.max_utility - 8.0).abs() < 1e-12);
    assert!((stats.mean_utility - 4.0).abs() < 1e-12);
    assert!(stats.scaled_quantiles.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(SCALED_QUANTILE_LEVELS.len(), stats.scaled_quantiles.len());
    // Scaled utilities û / max = [3, 8, 1] / 0.8 (the maximum is not bias-corrected, as in the
    // reference); quantiles interpolate the sorted sigmoids.
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let sorted = [sig(1.25), sig(3.75), sig(10.0)];
    assert!((stats.scaled_quantiles[2] - sorted[1]).abs() < 1e-12);
    let q90 = sorted[1] + 0.8 * (sorted[2] - sorted[1]);
    assert!((stats.scaled_quantiles[4] - q90).abs() < 1e-12);
}

#[test]
fn groups_scale_the_step_of_their_parameters() {
    // Non-protected with sigma 0 and no decay is plain SGD: easy to check the multiplier.
    let settings = UpgdSettings {
        perturbation: Perturbation::NonProtected,
        ..plain(UtilityScope::Global)
    };
    let m = linear([1.0, 2.0], 0.5);
    let group = ParamGroup {
        name: "bias".into(),
        lr_multiplier: 3.0,
        params: vec![m.bias.as_ref().unwrap().id],
    };
    let g = grads(&m);
    let mut optim = settings
        .init::<B, _>(ReplayNoise::new())
        .with_groups(&[group]);
    let after = params(&optim.step(0.1, m, g));
    let expected = [1.0 - 0.3, 2.0 - 0.4, 0.5 - 0.3];
    for (a, e) in after.iter().zip(expected) {
        assert!((a - e).abs() < 1e-15, "{a} vs {e}");
    }
}

#[test]
fn a_record_round_trip_resumes_the_same_trajectory() {
    let settings = UpgdSettings {
        sigma: 0.0,
        ..UpgdSettings::adaupgd()
    };
    let run = |optim: &mut Upgd<B, RngNoise>, mut m: Linear<B>, steps: usize| {
        for _ in 0..steps {
            let g = grads(&m);
            m = optim.step(0.05, m, g);
        }
        m
    };
    let mut a = settings.init::<B, _>(RngNoise::seed_from_u64(1));
    let m = run(&mut a, linear([0.3, -0.7], 0.2), 3);
    let bytes = BinBytesRecorder::<DoublePrecisionSettings>::default()
        .record(Optimizer::<Linear<B>, B>::to_record(&a), ())
        .unwrap();
    let record = BinBytesRecorder::<DoublePrecisionSettings>::default()
        .load(bytes, &Default::default())
        .unwrap();
    let b = settings.init::<B, _>(RngNoise::seed_from_u64(1));
    let mut b = Optimizer::<Linear<B>, B>::load_record(b, record);
    let id = m.weight.id;
    assert_eq!(b.param_state(id).unwrap().step, 3);
    let ma = run(&mut a, m.clone(), 2);
    let mb = run(&mut b, m.clone(), 2);
    assert_eq!(params(&ma), params(&mb));
    // A fresh optimizer (no moments, step 1 bias corrections) goes elsewhere.
    let mut fresh = settings.init::<B, _>(RngNoise::seed_from_u64(1));
    assert_ne!(params(&run(&mut fresh, m, 2)), params(&ma));
}

#[test]
fn squared_gradient_utility_adds_the_curvature_term() {
    let settings = UpgdSettings {
        utility_order: UtilityOrder::SquaredGradient,
        ..plain(UtilityScope::Local)
    };
    let m = linear([1.0, -2.0], 0.5);
    let id = m.weight.id;
    let g = grads(&m);
    let mut optim = settings.init::<B, _>(ReplayNoise::new());
    optim.step(0.1, m, g);
    let u: Vec<f64> = optim
        .param_state(id)
        .unwrap()
        .utility
        .clone()
        .into_data()
        .to_vec()
        .unwrap();
    for (u, (gr, p)) in u.iter().zip([(3.0, 1.0), (4.0, -2.0)]) {
        let e: f64 = 0.1 * (-gr * p + 0.5 * (gr * p) * (gr * p));
        assert!((u - e).abs() < 1e-15, "{u} vs {e}");
    }
}

#[test]
fn noise_sources_perturb_and_reproduce() {
    let settings = UpgdSettings {
        sigma: 1.0,
        ..plain(UtilityScope::Global)
    };
    let step = |noise: RngNoise| {
        let m = linear([0.0, 0.0], 0.0);
        let g = grads(&m);
        params(&settings.init::<B, _>(noise).step(0.1, m, g))
    };
    let a = step(RngNoise::seed_from_u64(3));
    assert_eq!(a, step(RngNoise::seed_from_u64(3)));
    assert_ne!(a, step(RngNoise::seed_from_u64(4)));
    // Zero parameters: s = 1/2 and the step is lr (g + n) / 2, so the noise shows.
    assert!((a[0] + 0.15).abs() > 1e-6);
    let m = linear([0.0, 0.0], 0.0);
    let g = grads(&m);
    let b = params(&settings.init::<B, _>(BackendNoise).step(0.1, m, g));
    assert!(b.iter().all(|x| x.is_finite()));
    assert_ne!(b, vec![-0.15, -0.2, -0.05]);
}

#[test]
fn bad_settings_are_config_errors() {
    let cases = [
        (
            UpgdSettings {
                sigma: -0.1,
                ..UpgdSettings::adaupgd()
            },
            "upgd.sigma",
        ),
        (
            UpgdSettings {
                beta_utility: 1.0,
                ..UpgdSettings::adaupgd()
            },
            "upgd.beta_utility",
        ),
        (
            UpgdSettings {
                beta_utility: -0.5,
                ..UpgdSettings::adaupgd()
            },
            "upgd.beta_utility",
        ),
        (
            UpgdSettings {
                weight_decay: -1.0,
                ..UpgdSettings::adaupgd()
            },
            "upgd.weight_decay",
        ),
        (
            UpgdSettings {
                step_size_factor: 0.0,
                ..UpgdSettings::adaupgd()
            },
            "upgd.step_size_factor",
        ),
        (
            UpgdSettings {
                adaptive: Some(quantrl_optim::AdamMoments {
                    beta2: 1.0,
                    ..Default::default()
                }),
                ..UpgdSettings::adaupgd()
            },
            "upgd.beta2",
        ),
        (
            UpgdSettings {
                adaptive: Some(quantrl_optim::AdamMoments {
                    eps: 0.0,
                    ..Default::default()
                }),
                ..UpgdSettings::adaupgd()
            },
            "upgd.eps",
        ),
    ];
    for (s, field) in cases {
        let err = s.validate().expect_err(field).to_string();
        assert!(err.contains(field), "{err}");
    }
    for s in [
        UpgdSettings::first_order_global(),
        UpgdSettings::first_order_local(),
        UpgdSettings::readme(),
        UpgdSettings::adaupgd(),
    ] {
        s.validate().unwrap();
    }
    let json = serde_json::to_string(&UpgdSettings::adaupgd()).unwrap();
    assert_eq!(
        serde_json::from_str::<UpgdSettings>(&json).unwrap(),
        UpgdSettings::adaupgd()
    );
}
