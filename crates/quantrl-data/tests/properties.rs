//! Property tests: causality of every feature, reproducible and positive synthetic markets,
//! walk-forward folds that never overlap and respect the embargo.

use proptest::prelude::*;
use quantrl_data::indicators::{
    atr, bollinger, daily_log_return_percent, ema, log_returns, macd, rolling_correlation,
    rolling_mean, rolling_std, rolling_volatility, rsi,
};
use quantrl_data::normalize::{Normalizer, expanding_zscore};
use quantrl_data::regime::{ThresholdSource, VolRegimeConfig};
use quantrl_data::split::{WalkForwardConfig, WindowMode, split_by_fraction};
use quantrl_data::synthetic::{
    GarchConfig, GbmConfig, JumpDiffusionConfig, PlantedSignalConfig, Regime, RegimeSwitchingConfig,
};

/// Bit-identical, with any NaN equal to any NaN.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Every output series, each prefix `..=t` compared.
fn assert_prefix_equal(what: &str, a: &[f64], b: &[f64], t: usize) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for i in 0..=t.min(a.len() - 1) {
        assert!(
            same(a[i], b[i]),
            "{what}[{i}] changed ({} vs {}) when data after {t} changed",
            a[i],
            b[i]
        );
    }
}

/// A bar series: close, high, low (high >= close >= low > 0).
#[derive(Debug, Clone)]
struct Bars {
    close: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    other: Vec<f64>,
}

fn bars(len: usize) -> impl Strategy<Value = Bars> {
    prop::collection::vec(
        (1.0f64..200.0, 0.0f64..0.05, 0.0f64..0.05, 1.0f64..200.0),
        len,
    )
    .prop_map(|v| Bars {
        close: v.iter().map(|x| x.0).collect(),
        high: v.iter().map(|x| x.0 * (1.0 + x.1)).collect(),
        low: v.iter().map(|x| x.0 * (1.0 - x.2)).collect(),
        other: v.iter().map(|x| x.3).collect(),
    })
}

/// Two bar series that agree up to index `t` and differ (freshly drawn) after it.
fn perturbed_pair() -> impl Strategy<Value = (Bars, Bars, usize)> {
    (2usize..100)
        .prop_flat_map(|n| (bars(n), bars(n), 0..n))
        .prop_map(|(a, mut b, t)| {
            for (x, y) in [
                (&a.close, &mut b.close),
                (&a.high, &mut b.high),
                (&a.low, &mut b.low),
                (&a.other, &mut b.other),
            ] {
                y[..=t].copy_from_slice(&x[..=t]);
            }
            (a, b, t)
        })
}

/// Every causal feature of the crate on one bar series, by name.
fn all_features(b: &Bars, w: usize) -> Vec<(&'static str, Vec<f64>)> {
    let lr = log_returns(&b.close).unwrap();
    let lr_other = log_returns(&b.other).unwrap();
    let m = macd(&b.close, w, 2 * w, w.div_ceil(2)).unwrap();
    let bb = bollinger(&b.close, w, 2.0).unwrap();
    let w2 = w.max(2);
    let mut features = vec![
        ("rsi", rsi(&b.close, w).unwrap()),
        ("ema", ema(&b.close, w).unwrap()),
        ("macd", m.macd),
        ("macd_signal", m.signal),
        ("macd_histogram", m.histogram),
        ("bb_mavg", bb.mavg),
        ("bb_mstd", bb.mstd),
        ("bb_upper", bb.upper),
        ("bb_lower", bb.lower),
        ("atr", atr(&b.high, &b.low, &b.close, w).unwrap()),
        ("log_return", lr.clone()),
        (
            "log_return_pct",
            daily_log_return_percent(&b.close).unwrap(),
        ),
        ("rolling_mean", rolling_mean(&lr, w).unwrap()),
        ("rolling_std", rolling_std(&lr, w2, 1).unwrap()),
        (
            "rolling_volatility",
            rolling_volatility(&lr, w2, 252.0).unwrap(),
        ),
        (
            "rolling_correlation",
            rolling_correlation(&lr, &lr_other, w2).unwrap(),
        ),
        (
            "expanding_zscore",
            expanding_zscore(&b.close, 1, 2).unwrap(),
        ),
    ];
    let planted = PlantedSignalConfig::default();
    features.push(("planted_filter", planted.filter(&b.other)));
    for (name, thresholds) in [
        (
            "regime_expanding",
            ThresholdSource::Expanding { min_history: 3 },
        ),
        ("regime_rolling", ThresholdSource::Rolling { lookback: 5 }),
    ] {
        let config = VolRegimeConfig {
            vol_window: w2,
            thresholds,
            ..Default::default()
        };
        let labels = config.label(&lr).unwrap().labels;
        features.push((
            name,
            labels
                .iter()
                .map(|l| l.map_or(f64::NAN, |x| x as f64))
                .collect(),
        ));
    }
    features
}

proptest! {
    #[test]
    fn features_at_t_ignore_data_after_t((a, b, t) in perturbed_pair(), w in 1usize..30) {
        let fa = all_features(&a, w);
        let fb = all_features(&b, w);
        for ((name, x), (_, y)) in fa.iter().zip(&fb) {
            assert_prefix_equal(name, x, y, t);
        }
    }

    #[test]
    fn training_span_statistics_ignore_data_after_the_span((a, b, t) in perturbed_pair()) {
        // Rows 0..=t are shared; fitting on them must give the same statistics.
        let fa = Normalizer::fit(&a.close, 1, 0..t + 1).unwrap();
        let fb = Normalizer::fit(&b.close, 1, 0..t + 1).unwrap();
        prop_assert_eq!(&fa, &fb);
        let config = VolRegimeConfig {
            vol_window: 2,
            cut_quantiles: vec![0.5],
            thresholds: ThresholdSource::TrainSpan { end: t + 1 },
        };
        let (la, lb) = (config.label(&a.close), config.label(&b.close));
        if let (Ok(la), Ok(lb)) = (la, lb) {
            prop_assert_eq!(&la.labels[..=t], &lb.labels[..=t]);
        }
    }

    #[test]
    fn generators_are_reproducible_with_positive_prices(
        seed in any::<u64>(),
        n_steps in 1usize..300,
        mu in -0.5f64..0.5,
        sigma in 0.0f64..1.0,
        phi in -0.99f64..0.99,
        garch in (1e-7f64..1e-4, 0.0f64..0.3, 0.0f64..0.69),
    ) {
        let gbm =
            GbmConfig { n_steps, mu_per_year: mu, sigma_per_year: sigma, ..Default::default() };
        let regimes = RegimeSwitchingConfig {
            n_steps,
            regimes: vec![
                Regime { mu_per_year: mu, sigma_per_year: sigma },
                Regime { mu_per_year: -mu, sigma_per_year: 2.0 * sigma },
                Regime { mu_per_year: 0.0, sigma_per_year: 0.1 },
            ],
            transition: vec![vec![0.9, 0.05, 0.05], vec![0.1, 0.8, 0.1], vec![0.0, 0.5, 0.5]],
            initial_regime: 2,
            ..Default::default()
        };
        let jumps = JumpDiffusionConfig {
            n_steps,
            mu_per_year: mu,
            sigma_per_year: sigma,
            jumps_per_year: 20.0,
            ..JumpDiffusionConfig::rare_crash()
        };
        let (omega, alpha, beta) = garch;
        let garch = GarchConfig { n_steps, omega, alpha, beta, ..Default::default() };
        let planted = PlantedSignalConfig { n_steps, phi, ..Default::default() };

        let paths = [
            gbm.generate(seed).unwrap(),
            regimes.generate(seed).unwrap().path,
            jumps.generate(seed).unwrap().path,
            garch.generate(seed).unwrap().path,
            planted.generate(seed).unwrap().path,
        ];
        let again = [
            gbm.generate(seed).unwrap(),
            regimes.generate(seed).unwrap().path,
            jumps.generate(seed).unwrap().path,
            garch.generate(seed).unwrap().path,
            planted.generate(seed).unwrap().path,
        ];
        prop_assert_eq!(&paths, &again);
        for path in &paths {
            prop_assert_eq!(path.prices.len(), n_steps + 1);
            prop_assert_eq!(path.log_returns.len(), n_steps);
            prop_assert!(path.prices.iter().all(|p| p.is_finite() && *p > 0.0));
        }
        let labels = regimes.generate(seed).unwrap().regimes;
        prop_assert_eq!(labels[0], 2);
        prop_assert!(labels.iter().all(|&r| r < 3));
    }

    #[test]
    fn walk_forward_folds_never_overlap_and_respect_the_embargo(
        n in 1usize..2000,
        train_len in 1usize..300,
        test_len in 1usize..100,
        embargo in 0usize..20,
        expanding in any::<bool>(),
    ) {
        let mode = if expanding { WindowMode::Expanding } else { WindowMode::Rolling };
        let config = WalkForwardConfig { train_len, test_len, embargo, mode };
        match config.folds(n) {
            Err(_) => prop_assert!(train_len + embargo + test_len > n),
            Ok(folds) => {
                prop_assert!(!folds.is_empty());
                for (k, f) in folds.iter().enumerate() {
                    prop_assert_eq!(f.index, k);
                    prop_assert_eq!(f.train.end + embargo, f.test.start);
                    prop_assert!(!f.train.is_empty());
                    prop_assert_eq!(f.test.len(), test_len);
                    prop_assert!(f.test.end <= n);
                    match mode {
                        WindowMode::Rolling => prop_assert_eq!(f.train.len(), train_len),
                        WindowMode::Expanding => prop_assert_eq!(f.train.start, 0),
                    }
                }
                for pair in folds.windows(2) {
                    prop_assert!(pair[0].test.end <= pair[1].test.start);
                    prop_assert!(pair[0].train.start <= pair[1].train.start);
                }
                // No room was left for another full test window.
                prop_assert!(folds.last().unwrap().test.end + test_len > n);
            }
        }
    }

    #[test]
    fn fraction_splits_are_ordered_and_cover_the_data(
        n in 1usize..5000,
        train in 0.05f64..0.9,
        validation in 0.0f64..0.5,
    ) {
        prop_assume!(train + validation < 1.0);
        if let Ok(s) = split_by_fraction(n, train, validation) {
            prop_assert_eq!(s.train.start, 0);
            prop_assert_eq!(s.train.end, s.validation.start);
            prop_assert_eq!(s.validation.end, s.test.start);
            prop_assert_eq!(s.test.end, n);
            prop_assert!(!s.train.is_empty() && !s.test.is_empty());
        }
    }
}
