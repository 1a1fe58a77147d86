//! Behaviour, invariants (proptest) and config validation of the risk losses, in float64.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData};
use proptest::prelude::*;
use quantrl_core::ConfigError;
use quantrl_losses::cvar::{
    CvarConfig, CvarObjective, LagrangeMultiplier, QuantileCvar, TailConvention, cvar_empirical,
    cvar_quantiles, cvar_weights,
};
use quantrl_losses::irm::{
    FeatureSelection, IrmConfig, IrmLoss, IterativeHardThresholding, first_layer_scores,
    hard_threshold, irm_penalty,
};
use quantrl_losses::kl::{AdaptiveKlController, kl_penalized_surrogate};
use quantrl_losses::quantile::{
    QuantileHuberConfig, check_n_quantiles, quantile_huber_loss, quantile_huber_loss_2d,
};
use quantrl_losses::value::{ValueClip, ValueLossOptions, ValueScale, value_loss_with};

type B = Autodiff<NdArray<f64>>;

fn t1(v: &[f64]) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
}

fn t2(v: &[f64], rows: usize) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(v.to_vec(), [rows, v.len() / rows]),
        &Default::default(),
    )
}

fn vals<Bk: burn::tensor::backend::Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f64> {
    t.into_data().to_vec().unwrap()
}

fn scalar(t: Tensor<B, 1>) -> f64 {
    vals(t)[0]
}

fn field_of(e: ConfigError) -> String {
    match e {
        ConfigError::OutOfRange { field, .. } => field,
        ConfigError::Inconsistent(m) => m,
    }
}

const CONVENTIONS: [QuantileCvar; 4] = [
    QuantileCvar::Fractional,
    QuantileCvar::Ceil,
    QuantileCvar::Floor,
    QuantileCvar::Midpoint,
];

proptest! {
    #[test]
    fn quantile_huber_is_non_negative(
        current in prop::collection::vec(-50.0f64..50.0, 12),
        target in prop::collection::vec(-50.0f64..50.0, 8),
        kappa in 0.05f64..5.0,
        sum in any::<bool>(),
    ) {
        let config = QuantileHuberConfig { kappa, sum_over_quantiles: sum };
        let two = scalar(quantile_huber_loss_2d(t2(&current, 2), t2(&target, 2), None, &config));
        prop_assert!(two >= 0.0, "{two}");
        let cur3 = t2(&current, 2).reshape([1, 2, 6]);
        let tgt3 = t2(&target, 1).reshape([1, 1, 8]);
        let three = scalar(quantile_huber_loss(cur3, tgt3, None, &config));
        prop_assert!(three >= 0.0, "{three}");
    }

    #[test]
    fn quantile_cvar_is_below_the_mean_and_monotone_in_alpha(
        mut row in prop::collection::vec(-10.0f64..10.0, 1..40),
        a in 0.001f64..0.999,
        b in 0.001f64..0.999,
    ) {
        row.sort_by(f64::total_cmp);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mean = row.iter().sum::<f64>() / row.len() as f64;
        for conv in CONVENTIONS {
            let w = cvar_weights(row.len(), lo, conv);
            prop_assert!(w.iter().all(|&x| x >= 0.0));
            prop_assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let c_lo = scalar(cvar_quantiles(t2(&row, 1), lo, conv));
            let c_hi = scalar(cvar_quantiles(t2(&row, 1), hi, conv));
            prop_assert!(c_lo <= mean + 1e-9, "{conv:?}: {c_lo} > mean {mean}");
            prop_assert!(c_lo <= c_hi + 1e-9, "{conv:?}: not monotone {c_lo} > {c_hi}");
        }
    }

    #[test]
    fn empirical_cvar_is_below_the_mean_monotone_and_agrees_with_quantrl_eval(
        sample in prop::collection::vec((-20i32..20).prop_map(|x| x as f64 * 0.01), 2..80),
        a in 0.01f64..0.99,
        b in 0.01f64..0.99,
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mean = sample.iter().sum::<f64>() / sample.len() as f64;
        for (conv, eval_conv) in [
            (TailConvention::Lower, quantrl_eval::TailConvention::Lower),
            (TailConvention::Empyrical, quantrl_eval::TailConvention::Empyrical),
        ] {
            let (_, c_lo) = cvar_empirical(t1(&sample), lo, conv);
            let (_, c_hi) = cvar_empirical(t1(&sample), hi, conv);
            let (c_lo, c_hi) = (scalar(c_lo), scalar(c_hi));
            prop_assert!(c_lo <= mean + 1e-12);
            prop_assert!(c_lo <= c_hi + 1e-12);
            let reported = quantrl_eval::expected_shortfall(&sample, lo, eval_conv).unwrap();
            prop_assert!((c_lo - reported).abs() < 1e-12, "{conv:?}: {c_lo} vs eval {reported}");
        }
    }
}

#[test]
fn quantile_huber_is_zero_on_a_perfect_fit_and_pushes_quantiles_toward_targets() {
    let config = QuantileHuberConfig::default();
    let zero = quantile_huber_loss_2d(t2(&[1.5], 1), t2(&[1.5], 1), None, &config);
    assert_eq!(scalar(zero), 0.0);
    // One quantile at tau = 0.5 below a target: the gradient moves it up.
    let cur = t2(&[0.0], 1).require_grad();
    let loss = quantile_huber_loss_2d(cur.clone(), t2(&[3.0], 1), None, &config);
    let g = vals(cur.grad(&loss.backward()).unwrap());
    assert!(g[0] < 0.0, "{g:?}");
    // Custom taus: tau = 0.9 weighs positive errors 0.9 and negative ones 0.1.
    let up = quantile_huber_loss_2d(t2(&[0.0], 1), t2(&[0.5], 1), Some(&[0.9]), &config);
    let down = quantile_huber_loss_2d(t2(&[0.0], 1), t2(&[-0.5], 1), Some(&[0.9]), &config);
    assert!((scalar(up) - 0.9 * 0.125).abs() < 1e-15);
    assert!((scalar(down) - 0.1 * 0.125).abs() < 1e-15);
}

#[test]
fn cvar_objective_penalty_and_constraint() {
    let cvar = t1(&[-0.2]).require_grad();
    let penalty = CvarObjective::Penalty { weight: 0.5 };
    penalty.validate().unwrap();
    let loss = penalty.loss(cvar.clone());
    assert!((scalar(loss.clone()) - 0.1).abs() < 1e-15);
    assert!((vals(cvar.grad(&loss.backward()).unwrap())[0] + 0.5).abs() < 1e-15);

    let mut constraint =
        CvarObjective::Constraint(LagrangeMultiplier::new(-0.1, 2.0, 0.0).unwrap());
    // Violated (CVaR -0.2 < -0.1): the multiplier grows by lr * 0.1.
    assert!((constraint.update(-0.2) - 0.2).abs() < 1e-12);
    assert!((scalar(constraint.loss(t1(&[-0.2]))) - 0.2 * 0.1).abs() < 1e-12);
    // Satisfied with slack: it shrinks, and is clamped at zero.
    assert!((constraint.update(-0.15 + 0.1) - 0.1).abs() < 1e-12);
    assert_eq!(constraint.update(1.0), 0.0);
    assert_eq!(constraint.update(f64::NAN), 0.0);
    let json = serde_json::to_string(&constraint).unwrap();
    let back: CvarObjective = serde_json::from_str(&json).unwrap();
    assert_eq!(back, constraint);
}

#[test]
fn irm_groups_by_label_and_vanishes_on_a_perfect_fit() {
    let config = IrmConfig {
        loss: IrmLoss::Mse,
        penalty_weight: 1.0,
    };
    let z = [1.0, 2.0, 3.0, 4.0];
    let terms = irm_penalty(t1(&z), t1(&z), &[7, 2, 7, 2], &config);
    assert_eq!(terms.env_labels, vec![2, 7]);
    assert_eq!(vals(terms.penalty_per_env), vec![0.0, 0.0]);
    // Env 2 holds samples 1 and 3: grad_w = mean(2 z (z - y)) with y = 0 -> (8 + 32) / 2.
    let terms = irm_penalty(t1(&z), t1(&[0.0; 4]), &[7, 2, 7, 2], &config);
    assert_eq!(vals(terms.grad_w_per_env), vec![20.0, 10.0]);
}

#[test]
fn iterative_hard_thresholding_shrinks_to_target_and_reports_features() {
    let mut iht = IterativeHardThresholding::new(8, 2, 3).unwrap();
    let ks: Vec<usize> = (1..=3).map(|r| iht.k_after_round(r)).collect();
    assert_eq!(ks, vec![5, 3, 2]);
    let scores = [0.1, 5.0, 0.3, 4.0, 0.2, 3.0, 2.0, 1.0];
    assert_eq!(iht.next_round(&scores).selected, vec![1, 3, 5, 6, 7]);
    // Dropped features cannot come back, whatever their new score.
    let scores2 = [9.0, 1.0, 9.0, 2.0, 9.0, 3.0, 0.5, 4.0];
    assert_eq!(iht.next_round(&scores2).selected, vec![3, 5, 7]);
    let last = iht.next_round(&scores2).clone();
    assert_eq!(last.selected, vec![5, 7]);
    assert!(iht.finished());
    assert_eq!(iht.next_round(&scores).selected, vec![5, 7]);
    let x = t2(&[1.0; 8], 1);
    assert_eq!(
        vals(last.apply(x)),
        vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    );
    // Ties go to the lower index.
    assert_eq!(
        hard_threshold(&[1.0, 1.0, 1.0], &[0, 1, 2], 2).selected,
        vec![0, 1]
    );
    assert_eq!(FeatureSelection::all(2).mask, vec![1.0, 1.0]);
    // Row norms of a [features, hidden] weight.
    let s = first_layer_scores(t2(&[3.0, 4.0, 0.0, 1.0], 2));
    assert_eq!(s, vec![5.0, 1.0]);
}

#[test]
fn adaptive_kl_follows_the_ppo_rule() {
    let mut c = AdaptiveKlController::new(1.0, 0.01).unwrap();
    assert_eq!(c.update(0.016), 2.0);
    assert_eq!(c.update(0.01), 2.0);
    assert_eq!(c.update(0.006), 1.0);
    assert_eq!(c.update(f64::NAN), 1.0);
    let lp = t1(&[-1.0, -2.0]).require_grad();
    let terms = kl_penalized_surrogate(lp.clone(), t1(&[-1.0, -2.0]), t1(&[1.0, 3.0]), 5.0);
    assert_eq!(scalar(terms.kl.clone()), 0.0);
    assert!((scalar(terms.loss.clone()) + 2.0).abs() < 1e-15);
    // At r = 1 the KL term has zero gradient: only the surrogate's -A / n remains.
    let g = vals(lp.grad(&terms.loss.backward()).unwrap());
    assert!((g[0] + 0.5).abs() < 1e-15 && (g[1] + 1.5).abs() < 1e-15);
    // Away from r = 1 the penalty is positive.
    let terms = kl_penalized_surrogate(t1(&[-0.5]), t1(&[-1.0]), t1(&[0.0]), 5.0);
    let kl = 0.5f64.exp() - 1.0 - 0.5;
    assert!((scalar(terms.kl) - kl).abs() < 1e-15);
    assert!((scalar(terms.loss) - 5.0 * kl).abs() < 1e-14);
}

#[test]
fn value_loss_options_follow_their_formulas() {
    let values = [1.0, 2.0, 5.0];
    let old = [0.0, 2.5, 4.0];
    let returns = [1.0, 3.0, 2.0];
    let var = 1.0; // mean 2, squared deviations 1 + 1 + 0, ddof 1.
    let plain = scalar(value_loss_with(
        t1(&values),
        t1(&old),
        t1(&returns),
        &ValueLossOptions::default(),
    ));
    assert!((plain - (0.0 + 1.0 + 9.0) / 3.0).abs() < 1e-15);
    let scaled = ValueLossOptions {
        clip: ValueClip::None,
        scale: ValueScale::VarianceScaled { eps: 1e-8 },
    };
    let s = scalar(value_loss_with(
        t1(&values),
        t1(&old),
        t1(&returns),
        &scaled,
    ));
    assert!((s - plain / (var + 1e-8)).abs() < 1e-12);
    // k std(R) = 0.5: same as a fixed clip of 0.5.
    let adaptive = ValueLossOptions {
        clip: ValueClip::VarianceAdaptive { k: 0.5 },
        scale: ValueScale::Mse,
    };
    let fixed = ValueLossOptions {
        clip: ValueClip::Fixed(0.5),
        scale: ValueScale::Mse,
    };
    let a = scalar(value_loss_with(
        t1(&values),
        t1(&old),
        t1(&returns),
        &adaptive,
    ));
    let f = scalar(value_loss_with(t1(&values), t1(&old), t1(&returns), &fixed));
    assert!((a - f).abs() < 1e-15, "{a} vs {f}");
    // Predictions 0.5, 2.0, 4.5 against 1, 3, 2.
    assert!((f - (0.25 + 1.0 + 6.25) / 3.0).abs() < 1e-15);
    for o in [adaptive, fixed, scaled] {
        o.validate().unwrap();
    }
}

#[test]
fn bad_configs_are_config_errors_naming_the_field() {
    let cases: Vec<(Result<(), ConfigError>, &str)> = vec![
        (
            QuantileHuberConfig {
                kappa: 0.0,
                ..Default::default()
            }
            .validate(),
            "quantile_huber.kappa",
        ),
        (
            QuantileHuberConfig {
                kappa: -1.0,
                ..Default::default()
            }
            .validate(),
            "quantile_huber.kappa",
        ),
        (
            QuantileHuberConfig {
                kappa: f64::NAN,
                ..Default::default()
            }
            .validate(),
            "quantile_huber.kappa",
        ),
        (check_n_quantiles("qr.n_quantiles", 0), "qr.n_quantiles"),
        (
            CvarConfig {
                alpha: 0.0,
                ..Default::default()
            }
            .validate(),
            "cvar.alpha",
        ),
        (
            CvarConfig {
                alpha: 1.0,
                ..Default::default()
            }
            .validate(),
            "cvar.alpha",
        ),
        (
            CvarConfig {
                alpha: 1.5,
                ..Default::default()
            }
            .validate(),
            "cvar.alpha",
        ),
        (
            CvarConfig {
                alpha: -0.1,
                ..Default::default()
            }
            .validate(),
            "cvar.alpha",
        ),
        (
            CvarObjective::Penalty { weight: -1.0 }.validate(),
            "cvar.weight",
        ),
        (
            LagrangeMultiplier::new(-0.1, 0.0, 0.0).map(|_| ()),
            "cvar.multiplier_lr",
        ),
        (
            LagrangeMultiplier::new(-0.1, 0.1, -1.0).map(|_| ()),
            "cvar.multiplier",
        ),
        (
            LagrangeMultiplier::new(f64::NAN, 0.1, 0.0).map(|_| ()),
            "cvar.threshold",
        ),
        (
            IrmConfig {
                loss: IrmLoss::Bce,
                penalty_weight: -1.0,
            }
            .validate(),
            "irm.penalty_weight",
        ),
        (
            IterativeHardThresholding::new(0, 1, 1).map(|_| ()),
            "iht.n_features",
        ),
        (
            IterativeHardThresholding::new(4, 0, 1).map(|_| ()),
            "iht.target_k",
        ),
        (
            IterativeHardThresholding::new(4, 5, 1).map(|_| ()),
            "iht.target_k",
        ),
        (
            IterativeHardThresholding::new(4, 2, 0).map(|_| ()),
            "iht.rounds",
        ),
        (AdaptiveKlController::new(1.0, 0.0).map(|_| ()), "kl.target"),
        (AdaptiveKlController::new(-1.0, 0.01).map(|_| ()), "kl.coef"),
        (
            ValueLossOptions {
                clip: ValueClip::Fixed(0.0),
                scale: ValueScale::Mse,
            }
            .validate(),
            "value.clip",
        ),
        (
            ValueLossOptions {
                clip: ValueClip::VarianceAdaptive { k: -1.0 },
                scale: ValueScale::Mse,
            }
            .validate(),
            "value.clip_k",
        ),
        (
            ValueLossOptions {
                clip: ValueClip::None,
                scale: ValueScale::VarianceScaled { eps: 0.0 },
            }
            .validate(),
            "value.eps",
        ),
    ];
    for (result, field) in cases {
        let err = result.expect_err(field);
        assert!(err.to_string().contains(field), "{err}");
        assert_eq!(field_of(err), field);
    }
    assert!(CvarConfig::default().validate().is_ok());
    assert!(QuantileHuberConfig::default().validate().is_ok());
}
