//! The feature pipeline: causality (property tests perturbing prices after `t`), the warm-up,
//! finiteness after it on the embedded data, unavailable features, and normalization from
//! training rows only.

use ndarray::Array2;
use proptest::prelude::*;
use quantrl_data::features::{
    BollingerBands, FeatureConfig, MacdSpans, featurize_ohlcv, featurize_panel,
};
use quantrl_data::{DataError, Date, Ohlcv, PricePanel, embedded};

/// Small windows, every feature on, so short random series get past the warm-up.
fn small_config() -> FeatureConfig {
    FeatureConfig {
        volatility_windows: vec![2, 5],
        periods_per_year: 252.0,
        rsi_window: Some(3),
        macd: Some(MacdSpans {
            fast: 2,
            slow: 4,
            signal: 2,
        }),
        bollinger: Some(BollingerBands { window: 3, k: 2.0 }),
        atr_window: Some(3),
        correlation_window: Some(4),
    }
}

fn dates(n: usize) -> Vec<Date> {
    (0..n as i32).map(Date::from_days_since_epoch).collect()
}

fn bars(rows: &[(f64, f64, f64)]) -> Ohlcv {
    let close: Vec<f64> = rows.iter().map(|r| r.0).collect();
    Ohlcv {
        dates: dates(rows.len()),
        open: close.clone(),
        high: rows.iter().map(|r| r.0 * (1.0 + r.1)).collect(),
        low: rows.iter().map(|r| r.0 * (1.0 - r.2)).collect(),
        close,
        volume: None,
    }
}

fn panel(closes: &[Vec<f64>]) -> PricePanel {
    let n = closes[0].len();
    PricePanel {
        dates: dates(n),
        tickers: (0..closes.len()).map(|j| format!("A{j}")).collect(),
        close: Array2::from_shape_fn((n, closes.len()), |(t, j)| closes[j][t]),
    }
}

/// Bit-identical, with any NaN equal to any NaN.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn row_strategy() -> impl Strategy<Value = (f64, f64, f64)> {
    (1.0f64..200.0, 0.0f64..0.05, 0.0f64..0.05)
}

proptest! {
    #[test]
    fn ohlcv_features_at_t_ignore_prices_after_t(
        (a, b, bench_a, bench_b, t) in (8usize..60).prop_flat_map(|n| (
            prop::collection::vec(row_strategy(), n),
            prop::collection::vec(row_strategy(), n),
            prop::collection::vec(1.0f64..200.0, n),
            prop::collection::vec(1.0f64..200.0, n),
            0..n,
        ))
    ) {
        let mut b = b;
        let mut bench_b = bench_b;
        b[..=t].copy_from_slice(&a[..=t]);
        bench_b[..=t].copy_from_slice(&bench_a[..=t]);
        let config = small_config();
        let fa = featurize_ohlcv(&bars(&a), &config, Some(&bench_a)).unwrap();
        let fb = featurize_ohlcv(&bars(&b), &config, Some(&bench_b)).unwrap();
        prop_assert_eq!(&fa.names, &fb.names);
        prop_assert_eq!(fa.first_valid_row, fb.first_valid_row);
        for s in 0..=t {
            for (j, (x, y)) in fa.row(s).iter().zip(fb.row(s)).enumerate() {
                prop_assert!(same(*x, *y), "{}[{}] moved: {} vs {}", fa.names[j], s, x, y);
            }
        }
        // From the first valid row on, everything is finite.
        prop_assert!(fa.values[fa.first_valid_row * fa.n_features()..].iter().all(|v| v.is_finite()));
    }

    #[test]
    fn panel_features_at_t_ignore_prices_after_t(
        (a, b, t) in (8usize..60).prop_flat_map(|n| (
            prop::collection::vec(prop::collection::vec(1.0f64..200.0, n), 3),
            prop::collection::vec(prop::collection::vec(1.0f64..200.0, n), 3),
            0..n,
        ))
    ) {
        let mut b = b;
        for (x, y) in a.iter().zip(b.iter_mut()) {
            y[..=t].copy_from_slice(&x[..=t]);
        }
        // The equal-weight benchmark mixes assets; it must stay causal too.
        let config = FeatureConfig { atr_window: None, ..small_config() };
        let fa = featurize_panel(&panel(&a), &config, None).unwrap();
        let fb = featurize_panel(&panel(&b), &config, None).unwrap();
        for s in 0..=t {
            for (j, (x, y)) in fa.row(s).iter().zip(fb.row(s)).enumerate() {
                prop_assert!(same(*x, *y), "{}[{}] moved: {} vs {}", fa.names[j], s, x, y);
            }
        }
        prop_assert!(fa.values[fa.first_valid_row * fa.n_features()..].iter().all(|v| v.is_finite()));
    }
}

#[test]
fn the_warm_up_is_explicit_and_exact() {
    let googl = embedded::googl().unwrap();
    let config = FeatureConfig {
        atr_window: Some(14),
        ..FeatureConfig::default()
    };
    let f = featurize_ohlcv(&googl, &config, None).unwrap();
    // vol_63 needs 63 returns, which start at row 1.
    assert_eq!(config.warmup(), 63);
    assert_eq!(f.first_valid_row, 63);
    assert_eq!(
        f.names,
        [
            "log_return",
            "vol_5",
            "vol_21",
            "vol_63",
            "rsi_14",
            "macd",
            "macd_signal",
            "bb_pctb_20",
            "bb_width_20",
            "atr_14",
        ]
    );
    // Each feature is NaN exactly before its own first defined row.
    for (name, first) in [
        ("log_return", 1),
        ("vol_5", 5),
        ("vol_63", 63),
        ("rsi_14", 13),
        ("macd", 25),
        ("macd_signal", 33),
        ("bb_pctb_20", 19),
        ("atr_14", 13),
    ] {
        let column = f.column(name).unwrap();
        assert!(
            column[..first].iter().all(|v| v.is_nan()),
            "{name} before {first}"
        );
        assert!(
            column[first..].iter().all(|v| v.is_finite()),
            "{name} from {first}"
        );
    }
    assert_eq!(f.to_array2().dim(), (googl.len(), 10));
    assert_eq!(f.to_f32().len(), googl.len() * 10);
    assert_eq!(f.dates, googl.dates);
}

#[test]
fn panel_features_against_the_index() {
    let (panel, index) = embedded::sp500_panel()
        .unwrap()
        .align(&embedded::sp500_index().unwrap())
        .unwrap();
    let config = FeatureConfig {
        correlation_window: Some(63),
        ..FeatureConfig::default()
    };
    let bench = index.column("SP500").unwrap().to_vec();
    let f = featurize_panel(&panel, &config, Some(&bench)).unwrap();
    assert_eq!(f.n_features(), 200);
    assert_eq!(f.names[9], "AAPL.corr_63");
    assert_eq!(f.names[199], "XOM.corr_63");
    let first = f.first_valid_row;
    assert!(f.values[first * 200..].iter().all(|v| v.is_finite()));
    // Big stocks move with the index: mean correlation well above zero.
    let corr = f.column("XOM.corr_63").unwrap();
    let mean = corr[first..].iter().sum::<f64>() / (corr.len() - first) as f64;
    assert!(mean > 0.4, "{mean}");
    // The equal-weight benchmark gives different, still finite, correlations.
    let ew = featurize_panel(&panel, &config, None).unwrap();
    assert!(ew.values[first * 200..].iter().all(|v| v.is_finite()));
    assert_ne!(ew.column("XOM.corr_63"), f.column("XOM.corr_63"));
}

#[test]
fn unavailable_features_are_clear_errors() {
    let panel = embedded::sp500_index().unwrap();
    let config = FeatureConfig {
        atr_window: Some(14),
        ..FeatureConfig::default()
    };
    let err = featurize_panel(&panel, &config, None).unwrap_err();
    assert!(
        matches!(&err, DataError::FeatureUnavailable { feature, needs, .. } if feature == "atr" && needs.contains("high")),
        "{err}"
    );

    let googl = embedded::googl().unwrap();
    let config = FeatureConfig {
        correlation_window: Some(20),
        ..FeatureConfig::default()
    };
    let err = featurize_ohlcv(&googl, &config, None).unwrap_err();
    assert!(
        matches!(&err, DataError::FeatureUnavailable { feature, .. } if feature == "correlation"),
        "{err}"
    );
    let short = vec![1.0; 10];
    assert!(matches!(
        featurize_ohlcv(&googl, &config, Some(&short)),
        Err(DataError::LengthMismatch { .. })
    ));
}

#[test]
fn bad_inputs_to_the_pipeline() {
    let googl = embedded::googl().unwrap();
    let tiny = googl.slice_dates(googl.dates[0], googl.dates[30]);
    assert!(matches!(
        featurize_ohlcv(&tiny, &FeatureConfig::default(), None),
        Err(DataError::TooShort {
            needed: 64,
            available: 30,
            ..
        })
    ));
    let bad_window = FeatureConfig {
        volatility_windows: vec![1],
        ..FeatureConfig::default()
    };
    assert!(matches!(
        featurize_ohlcv(&googl, &bad_window, None),
        Err(DataError::Config(_))
    ));
    let mut broken = panel(&[vec![1.0; 100], vec![2.0; 100]]);
    broken.close[[50, 1]] = -1.0;
    let err = featurize_panel(&broken, &FeatureConfig::default(), None).unwrap_err();
    assert!(
        matches!(&err, DataError::NonPositive { series, index: 50, .. } if series == "A1 close"),
        "{err}"
    );
}

#[test]
fn normalization_uses_training_rows_only() {
    let panel = embedded::sp500_panel().unwrap();
    let f = featurize_panel(&panel, &FeatureConfig::default(), None).unwrap();
    let train = 0..4000;
    let (scaled, normalizer) = f.normalized(train.clone()).unwrap();
    // Changing rows after the training span changes nothing in the statistics.
    let mut later = f.clone();
    let from = 4000 * f.n_features();
    later.values[from..].iter_mut().for_each(|v| *v *= 3.0);
    let (_, normalizer_later) = later.normalized(train).unwrap();
    assert_eq!(normalizer, normalizer_later);
    // The training rows are standardized; warm-up rows stay NaN.
    let col = scaled.column("AAPL.vol_21").unwrap();
    let fit = &col[f.first_valid_row..4000];
    let mean = fit.iter().sum::<f64>() / fit.len() as f64;
    assert!(mean.abs() < 1e-9, "{mean}");
    assert!(col[0].is_nan());
    // A training span inside the warm-up is refused.
    assert!(matches!(
        f.normalized(0..f.first_valid_row),
        Err(DataError::OutOfBounds { .. })
    ));
}
