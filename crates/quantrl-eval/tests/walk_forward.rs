//! Walk-forward: windows roll correctly, out-of-sample series tile the test rows, the
//! aggregation and the confidence intervals are the numbers they claim.

use std::sync::Arc;

use quantrl_data::Date;
use quantrl_data::split::{WalkForwardConfig, WindowMode};
use quantrl_envs::trading::{CostModel, Market, PositionActions, SingleAssetConfig, TradingConfig};
use quantrl_eval::{
    BacktestPolicy, Backtester, EnvSpec, EvalError, PerformanceSummary, PolicyActions,
    SummaryConfig, WalkForward, Window, calendar_windows, check_windows, row_windows, with_embargo,
};

/// Weekdays from 2018-01-01 (a Monday) to 2021-12-31.
fn weekdays() -> Vec<Date> {
    let start = Date::from_ymd(2018, 1, 1).unwrap().days_since_epoch();
    let end = Date::from_ymd(2022, 1, 1).unwrap().days_since_epoch();
    (start..end)
        .filter(|d| (d - start) % 7 < 5)
        .map(Date::from_days_since_epoch)
        .collect()
}

#[test]
fn calendar_windows_train_on_block_k_and_test_on_block_k_plus_1() {
    let dates = weekdays();
    let w = calendar_windows(&dates, 12, 12).unwrap();
    assert_eq!(w.len(), 3);
    for (k, win) in w.iter().enumerate() {
        assert_eq!(win.index, k);
        assert_eq!(
            win.train.end, win.test.start,
            "test right after train, no overlap"
        );
        let year = 2018 + k as i32;
        assert_eq!(dates[win.train.start].ymd().0, year);
        assert_eq!(dates[win.train.end - 1].ymd().0, year);
        assert_eq!(dates[win.test.start].ymd(), (year + 1, 1, 1));
        assert_eq!(dates[win.test.end - 1].ymd().0, year + 1);
        if k + 1 < w.len() {
            assert_eq!(w[k + 1].train, win.test, "roll by one block");
        }
    }
    assert_eq!(w[2].test.end, dates.len());

    // Two years of training, a half-year of test, rolled by the test length.
    let w = calendar_windows(&dates, 24, 6).unwrap();
    assert_eq!(w.len(), 4);
    for pair in w.windows(2) {
        assert_eq!(pair[0].test.end, pair[1].test.start);
        assert!(pair[1].train.start > pair[0].train.start);
    }
    assert_eq!(dates[w[0].test.start].ymd(), (2020, 1, 1));
    assert_eq!(dates[w[3].test.start].ymd(), (2021, 7, 1));

    assert!(matches!(
        calendar_windows(&dates, 0, 12),
        Err(EvalError::Parameter(_))
    ));
    assert!(
        calendar_windows(&dates[..100], 12, 12).is_err(),
        "no window fits"
    );
}

#[test]
fn an_embargo_separates_training_from_test() {
    let dates = weekdays();
    let plain = calendar_windows(&dates, 12, 12).unwrap();
    let w = with_embargo(plain.clone(), 5, dates.len()).unwrap();
    for (a, b) in plain.iter().zip(&w) {
        assert_eq!(b.train.start, a.train.start);
        assert_eq!(b.train.end + 5, a.train.end);
        assert_eq!(b.test, a.test);
        assert_eq!(
            b.test.start - b.train.end,
            5,
            "five rows between train and test"
        );
    }
    let too_long = plain[0].train.len();
    match with_embargo(plain, too_long, dates.len()) {
        Err(EvalError::Window { window: 0, reason }) => {
            assert!(reason.contains("embargo"), "{reason}")
        }
        other => panic!("expected a window error, got {other:?}"),
    }
}

#[test]
fn row_windows_are_the_data_crates_folds_and_bad_windows_are_refused() {
    let config = WalkForwardConfig {
        train_len: 50,
        test_len: 20,
        embargo: 3,
        mode: WindowMode::Rolling,
    };
    let w = row_windows(&config, 150).unwrap();
    assert_eq!(w.len(), 4);
    assert_eq!((w[0].train.clone(), w[0].test.clone()), (0..50, 53..73));
    assert_eq!(w[3].test, 113..133);
    check_windows(&w, 150).unwrap();

    let win = |index, train, test| Window { index, train, test };
    let cases = [
        (vec![win(0, 0..50, 40..60)], "overlaps"),
        (
            vec![win(0, 0..50, 50..60), win(1, 10..55, 55..70)],
            "overlaps the previous",
        ),
        (vec![win(0, 0..50, 50..200)], "past the data"),
        (vec![win(0, 0..0, 50..60)], "non-empty"),
        (vec![win(1, 0..50, 50..60)], "numbered 1"),
        (vec![], "no walk-forward window"),
    ];
    for (windows, message) in cases {
        let e = check_windows(&windows, 150).unwrap_err();
        assert!(matches!(e, EvalError::Window { .. }), "{e}");
        assert!(e.to_string().contains(message), "{e} lacks {message}");
    }
}

/// Always the same position level.
struct Fixed(u32);

impl BacktestPolicy for Fixed {
    fn reset(&mut self, _: usize) {}
    fn act(
        &mut self,
        _: &[f32],
        _: Option<&[bool]>,
        _: &[bool],
        out: &mut PolicyActions,
    ) -> Result<(), EvalError> {
        out.discrete_mut().unwrap()[0] = self.0;
        Ok(())
    }
}

fn backtester() -> Backtester {
    let close: Vec<f64> = (0..61)
        .map(|t| 100.0 * (1.0 + 0.002 * t as f64 + 0.03 * ((t * 5 % 7) as f64 - 3.0) / 3.0))
        .collect();
    let market = Arc::new(Market::from_close(1, close).unwrap());
    Backtester::new(
        market,
        EnvSpec::SingleAsset(SingleAssetConfig {
            trading: TradingConfig {
                window: 1,
                costs: CostModel {
                    fee_bps: 5.0,
                    ..CostModel::zero()
                },
                ..TradingConfig::default()
            },
            actions: PositionActions::Levels {
                levels: vec![-1.0, -0.5, 0.5, 1.0],
            },
        }),
    )
    .unwrap()
}

#[test]
fn tiny_walk_forward_aggregates_exactly() {
    let bt = backtester();
    let windows = vec![
        Window {
            index: 0,
            train: 0..20,
            test: 20..40,
        },
        Window {
            index: 1,
            train: 20..40,
            test: 40..60,
        },
    ];
    let wf = WalkForward::new(windows.clone(), vec![1, 2, 3]);
    let mut calls = Vec::new();
    let result = wf
        .run(&bt, |w, seed| {
            calls.push((w.index, seed));
            // "Training": the seed picks the level (short half, long half, long).
            Ok::<_, String>(Fixed([0, 1, 2, 3][seed as usize]))
        })
        .unwrap();
    assert_eq!(calls, [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]);
    assert_eq!(result.runs.len(), 6);

    // Each test span is backtested from the row before it: its returns are those of the
    // test rows, and the out-of-sample series tiles 20..60 without gap or overlap.
    for run in &result.runs {
        let w = &windows[run.window];
        assert_eq!(run.result.equity[0].row, w.test.start - 1);
        let rows: Vec<usize> = run.result.equity[1..].iter().map(|p| p.row).collect();
        assert_eq!(rows, w.test.clone().collect::<Vec<_>>());
    }
    let config = SummaryConfig::default();
    let mut sharpes = Vec::new();
    for (oos, seed) in result.out_of_sample.iter().zip([1u64, 2, 3]) {
        assert_eq!(oos.seed, Some(seed));
        assert_eq!(oos.rows, (20..60).collect::<Vec<_>>());
        let returns: Vec<f64> = result
            .runs
            .iter()
            .filter(|r| r.seed == seed)
            .flat_map(|r| r.result.returns())
            .collect();
        assert_eq!(oos.returns, returns);
        let mut nav = 1e6;
        for (r, v) in returns.iter().zip(&oos.nav) {
            nav *= 1.0 + r;
            assert!((v - nav).abs() < 1e-6, "{v} vs {nav}");
        }
        let want = PerformanceSummary::compute(&returns, None, None, &config).unwrap();
        assert_eq!(oos.metrics.sharpe_ratio, want.sharpe_ratio);
        assert_eq!(oos.metrics.max_drawdown, want.max_drawdown);
        sharpes.push(want.sharpe_ratio);
    }
    assert!(sharpes[0] < 0.0 && sharpes[2] > 0.0, "{sharpes:?}");

    // Mean and 95% t-interval across the three seeds, by hand:
    // half-width = t_{0.975, 2} * s / sqrt(3), t_{0.975, 2} = 0.95 / sqrt(0.04875).
    let mean = sharpes.iter().sum::<f64>() / 3.0;
    let s = (sharpes.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let half = 0.95 / 0.04875f64.sqrt() * s / 3f64.sqrt();
    let ci = &result.overall.sharpe_ratio;
    assert_eq!(ci.n, 3);
    assert!((ci.mean - mean).abs() < 1e-12);
    assert!((ci.std - s).abs() < 1e-12);
    assert!(
        (ci.low - (mean - half)).abs() < 1e-9,
        "{} vs {}",
        ci.low,
        mean - half
    );
    assert!((ci.high - (mean + half)).abs() < 1e-9);
    assert_eq!(ci.level, 0.95);
    // Per window: the intervals of that window's three test backtests.
    for (k, per) in result.per_window.iter().enumerate() {
        let values: Vec<f64> = result
            .runs
            .iter()
            .filter(|r| r.window == k)
            .map(|r| r.result.metrics.annual_return)
            .collect();
        assert!((per.annual_return.mean - values.iter().sum::<f64>() / 3.0).abs() < 1e-12);
    }

    // The baselines ran on the very same test spans: every row of the table shares the split.
    let labels: Vec<&str> = result
        .baselines_out_of_sample
        .iter()
        .map(|b| b.label.as_str())
        .collect();
    assert_eq!(
        labels,
        ["cash", "buy-and-hold", "equal-weight/21", "oracle"]
    );
    for b in &result.baselines_out_of_sample {
        assert_eq!(b.rows, result.out_of_sample[0].rows, "{}", b.label);
        assert_eq!(b.seed, None);
    }
    assert_eq!(result.baseline_runs.len(), 2 * 4);
    assert_eq!(result.window_dates[0].test_first, None, "no dates given");
}

#[test]
fn training_errors_and_bad_settings_are_typed() {
    let bt = backtester();
    let windows = vec![Window {
        index: 0,
        train: 0..30,
        test: 30..60,
    }];
    let wf = WalkForward::new(windows.clone(), vec![7]);
    let e = wf
        .run(&bt, |_, _| Err::<Fixed, _>("diverged at update 3"))
        .unwrap_err();
    assert_eq!(
        e,
        EvalError::Training {
            window: 0,
            seed: 7,
            message: "diverged at update 3".into()
        }
    );
    let mut none = WalkForward::new(windows.clone(), vec![]);
    assert!(none.run(&bt, |_, _| Ok::<_, String>(Fixed(0))).is_err());
    none.seeds = vec![1];
    none.confidence = 1.5;
    let e = none.run(&bt, |_, _| Ok::<_, String>(Fixed(0))).unwrap_err();
    assert!(e.to_string().contains("confidence"), "{e}");
    let past = WalkForward::new(
        vec![Window {
            index: 0,
            train: 0..30,
            test: 30..90,
        }],
        vec![1],
    );
    let e = past.run(&bt, |_, _| Ok::<_, String>(Fixed(0))).unwrap_err();
    assert!(matches!(e, EvalError::Window { window: 0, .. }), "{e}");
}
