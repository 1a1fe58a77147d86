//! Loading and featurizing the embedded data sets (`cargo bench -p quantrl-data --bench load`).
//!
//! The target: loading the S&P 500 panel (gzip'd CSV, 8313 days x 20 stocks) and turning it
//! into a feature matrix takes well under a second.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use quantrl_data::embedded;
use quantrl_data::features::{FeatureConfig, featurize_ohlcv, featurize_panel};

fn bench_load(c: &mut Criterion) {
    let config = FeatureConfig {
        correlation_window: Some(63),
        ..FeatureConfig::default()
    };
    c.bench_function("sp500_panel load", |b| {
        b.iter(|| black_box(embedded::sp500_panel().unwrap()))
    });
    let panel = embedded::sp500_panel().unwrap();
    c.bench_function("sp500_panel featurize (200 features)", |b| {
        b.iter(|| black_box(featurize_panel(&panel, &config, None).unwrap()))
    });
    c.bench_function("sp500_panel load + featurize", |b| {
        b.iter(|| {
            let panel = embedded::sp500_panel().unwrap();
            black_box(featurize_panel(&panel, &config, None).unwrap())
        })
    });
    c.bench_function("googl load + featurize (with ATR)", |b| {
        let config = FeatureConfig {
            atr_window: Some(14),
            ..FeatureConfig::default()
        };
        b.iter(|| {
            let googl = embedded::googl().unwrap();
            black_box(featurize_ohlcv(&googl, &config, None).unwrap())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_load
}
criterion_main!(benches);
