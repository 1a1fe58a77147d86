//! Reports: JSON round trip, CSV shape, PNG plots, manifest, atomic writes, typed errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quantrl_data::Date;
use quantrl_data::synthetic::GbmConfig;
use quantrl_envs::trading::{CostModel, Market, PortfolioActions, PortfolioConfig, TradingConfig};
use quantrl_eval::report::{self, write_files_atomically};
use quantrl_eval::{
    BacktestPolicy, Backtester, BaselineConfig, EnvSpec, EvalError, PolicyActions, Report,
    RunManifest, WalkForward, Window, format_table, format_walk_forward_table, market_hash, plots,
    standard_set,
};

/// A fresh, empty directory for one test, removed by [`Scratch::drop`].
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("quantrl-eval-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Rotates through the first four regimes every ten bars (a stand-in for a trained agent).
struct Rotate(usize);

impl BacktestPolicy for Rotate {
    fn reset(&mut self, _: usize) {
        self.0 = 0;
    }
    fn act(
        &mut self,
        _: &[f32],
        masks: Option<&[bool]>,
        _: &[bool],
        out: &mut PolicyActions,
    ) -> Result<(), EvalError> {
        let want = 1 + (self.0 / 10) % 4;
        self.0 += 1;
        let m = masks.unwrap();
        out.discrete_mut().unwrap()[0] = if m[want] { want as u32 } else { 0 };
        Ok(())
    }
}

fn market_and_dates(n: usize, t: usize) -> (Arc<Market>, Vec<Date>) {
    let mut close = vec![0.0; n * t];
    for a in 0..n {
        let path = GbmConfig {
            n_steps: t - 1,
            initial_price: 40.0 + 15.0 * a as f64,
            mu_per_year: 0.04 + 0.03 * a as f64,
            ..GbmConfig::default()
        }
        .generate(40 + a as u64)
        .unwrap();
        for (r, p) in path.prices.iter().enumerate() {
            close[r * n + a] = *p;
        }
    }
    let names = (0..n).map(|a| format!("STK{a}")).collect();
    let market = Market::from_close(n, close)
        .unwrap()
        .with_asset_names(names)
        .unwrap();
    let start = Date::from_ymd(2019, 1, 1).unwrap().days_since_epoch();
    let dates = (0..t as i32)
        .map(|k| Date::from_days_since_epoch(start + k * 7 / 5))
        .collect();
    (Arc::new(market), dates)
}

fn report_with_walk_forward() -> (Report, Arc<Market>) {
    let (market, dates) = market_and_dates(4, 600);
    let spec = EnvSpec::Portfolio(PortfolioConfig {
        trading: TradingConfig {
            window: 5,
            initial_nav: 1e6,
            costs: CostModel::default(),
            span_start: Some(300),
            ..TradingConfig::default()
        },
        actions: PortfolioActions::Regimes { allocations: None },
    });
    let bt = Backtester::new(market.clone(), spec)
        .unwrap()
        .with_dates(dates.clone())
        .unwrap();
    let agent = bt.run(&mut Rotate(0)).unwrap();
    let mut results = vec![agent];
    results.extend(standard_set(&bt, &BaselineConfig::default()).unwrap());
    let wf = WalkForward::new(
        vec![
            Window {
                index: 0,
                train: 0..300,
                test: 300..450,
            },
            Window {
                index: 1,
                train: 150..450,
                test: 450..600,
            },
        ],
        vec![0, 1],
    )
    .run(&bt, |_, seed| Ok::<_, String>(Rotate(seed as usize * 5)))
    .unwrap();
    let manifest = RunManifest::new(
        serde_json::json!({"env": "portfolio", "window": 5}),
        market_hash(&market),
        vec![0, 1],
    )
    .with_crate_version("quantrl-cli", "0.1.0");
    let report = Report::new(manifest, results, Some("buy-and-hold"))
        .unwrap()
        .with_walk_forward(wf);
    (report, market)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn reports_round_trip_and_csvs_have_the_right_shape() {
    let (report, _) = report_with_walk_forward();
    let labels: Vec<&str> = report.metrics.iter().map(|m| m.label.as_str()).collect();
    assert_eq!(
        labels,
        ["agent", "cash", "buy-and-hold", "equal-weight/21", "oracle"]
    );
    // The information ratio is against buy-and-hold; the cash row has none of its own risk.
    let ir = report.metrics[0].summary.information_ratio.unwrap();
    assert!(ir.is_finite());
    assert!(
        report.metrics[2]
            .summary
            .information_ratio
            .unwrap()
            .is_nan()
    );

    let scratch = Scratch::new("report");
    let dir = scratch.0.join("nested/run");
    let written = report::write_all(&dir, &report).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "report.json",
        "manifest.json",
        "metrics.csv",
        "equity_agent.csv",
        "trades_equal_weight_21.csv",
        "walk_forward_oos.csv",
        "walk_forward_metrics.csv",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());

    // JSON round trip (compared as JSON: NaN metrics are null both ways).
    let back = Report::read_json(&dir.join("report.json")).unwrap();
    let (a, b) = (
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(&report).unwrap(),
    );
    if a != b {
        fn diff(path: &str, a: &serde_json::Value, b: &serde_json::Value) {
            match (a, b) {
                (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                    for (k, v) in x {
                        diff(&format!("{path}.{k}"), v, &y[k]);
                    }
                }
                (serde_json::Value::Array(x), serde_json::Value::Array(y)) => {
                    for (k, (v, w)) in x.iter().zip(y).enumerate() {
                        diff(&format!("{path}[{k}]"), v, w);
                    }
                }
                _ if a != b => println!("DIFF {path}: {a} vs {b}"),
                _ => {}
            }
        }
        diff("", &a, &b);
        panic!("round trip differs");
    }
    assert_eq!(back.results[0].equity, report.results[0].equity);
    assert_eq!(back.results[0].trades, report.results[0].trades);
    assert_eq!(
        back.results[0].equity[0].date,
        report.results[0].equity[0].date
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&dir.join("manifest.json"))).unwrap();
    assert_eq!(manifest["data_hash"], report.manifest.data_hash);
    assert_eq!(manifest["crate_versions"]["quantrl-cli"], "0.1.0");
    assert_eq!(manifest["format_version"], 1);

    // CSVs: a header, then one line per row of data.
    let metrics = read(&dir.join("metrics.csv"));
    let lines: Vec<&str> = metrics.lines().collect();
    assert!(lines[0].starts_with("label,n_periods,final_nav,"));
    assert_eq!(lines.len(), 1 + 5);
    assert!(lines[2].starts_with("cash,"));
    let agent = &report.results[0];
    let equity = read(&dir.join("equity_agent.csv"));
    let lines: Vec<&str> = equity.lines().collect();
    assert_eq!(lines.len(), 1 + agent.equity.len());
    assert!(lines[0].starts_with("row,date,nav,cash,gross_exposure,drawdown,step_return"));
    assert!(lines[0].ends_with("w_STK0,w_STK1,w_STK2,w_STK3"));
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first.len(), 15 + 4);
    assert_eq!(first[0], agent.equity[0].row.to_string());
    assert_eq!(first[1], agent.equity[0].date.unwrap().to_string());
    // Numbers are written so that they read back exactly.
    let last: Vec<&str> = lines.last().unwrap().split(',').collect();
    assert_eq!(last[2].parse::<f64>().unwrap(), agent.final_nav());
    let trades = read(&dir.join("trades_agent.csv"));
    assert_eq!(trades.lines().count(), 1 + agent.trades.len());
    assert!(agent.trades.len() > 10);
    let wf = report.walk_forward.as_ref().unwrap();
    let oos = read(&dir.join("walk_forward_oos.csv"));
    let series = wf.out_of_sample.len() + wf.baselines_out_of_sample.len();
    assert_eq!(oos.lines().count(), 1 + series * 300);
    let wfm = read(&dir.join("walk_forward_metrics.csv"));
    assert_eq!(wfm.lines().count(), 1 + 3 * 11);
    assert!(
        wfm.lines()
            .nth(1)
            .unwrap()
            .starts_with("overall,sharpe_ratio,2,")
    );

    // The terminal table: a header, a rule, one line per row.
    let table = format_table(&report.metrics);
    print!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + 5);
    for h in [
        "Sharpe", "Sortino", "MaxDD", "Calmar", "AnnRet", "AnnVol", "CVaR", "IR",
    ] {
        assert!(lines[0].contains(h), "{h}");
    }
    assert!(
        lines[3].starts_with("cash ") && lines[3].contains(" - "),
        "{}",
        lines[3]
    );
    assert!(
        lines.iter().all(|l| l.len() == lines[0].len()),
        "aligned columns"
    );
}

#[test]
fn plots_are_decodable_pngs_of_the_right_size() {
    let (report, _) = report_with_walk_forward();
    let scratch = Scratch::new("plots");
    let written = plots::write_all(&scratch.0, &report).unwrap();
    assert_eq!(written.len(), 4);
    for path in &written {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.len() > 10_000,
            "{} is {} bytes",
            path.display(),
            bytes.len()
        );
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (plots::WIDTH, plots::HEIGHT));
        let pixels = &pixels[..info.buffer_size()];
        // Something is drawn: dark text and coloured lines on the white background.
        let dark = pixels
            .chunks(3)
            .filter(|p| p.iter().all(|&c| c < 80))
            .count();
        let coloured = pixels
            .chunks(3)
            .filter(|p| p.iter().max().unwrap() - p.iter().min().unwrap() > 100)
            .count();
        assert!(dark > 2_000, "{}: {dark} dark pixels", path.display());
        assert!(
            coloured > 2_000,
            "{}: {coloured} coloured pixels",
            path.display()
        );
    }
    if let Ok(keep) = std::env::var("QUANTRL_EVAL_KEEP_PLOTS") {
        for path in &written {
            std::fs::copy(path, Path::new(&keep).join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn unwritable_directories_are_typed_errors() {
    let (report, _) = report_with_walk_forward();
    let scratch = Scratch::new("unwritable");
    // A directory under a regular file cannot be created, whoever runs the test.
    let file = scratch.0.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let e = report::write_all(&file.join("out"), &report).unwrap_err();
    assert!(
        matches!(&e, EvalError::Io { action: "create directory", path, .. } if path.ends_with("a-file/out")),
        "{e}"
    );
    assert!(e.to_string().contains("a-file/out"), "{e}");
    let e = plots::write_all(&file.join("plots"), &report).unwrap_err();
    assert!(matches!(e, EvalError::Io { .. }), "{e}");
}

#[test]
fn a_failed_write_loses_nothing_already_saved() {
    let (report, _) = report_with_walk_forward();
    let scratch = Scratch::new("atomic");
    let dir = &scratch.0;
    std::fs::write(dir.join("report.json"), "the previous report").unwrap();
    std::fs::write(dir.join("metrics.csv"), "the previous metrics").unwrap();
    // Block the temporary file of one of the later files with a directory of its name.
    let blocker = dir.join(format!(".equity_oracle.csv.tmp-{}", std::process::id()));
    std::fs::create_dir(&blocker).unwrap();
    let e = report::write_all(dir, &report).unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::Io {
                action: "write",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(read(&dir.join("report.json")), "the previous report");
    assert_eq!(read(&dir.join("metrics.csv")), "the previous metrics");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let blocker_name = blocker.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        names,
        [blocker_name, "metrics.csv".into(), "report.json".into()]
    );

    // A directory where a file must go is found before anything is written.
    std::fs::remove_dir(&blocker).unwrap();
    std::fs::create_dir(dir.join("manifest.json")).unwrap();
    let e = write_files_atomically(
        dir,
        &[
            ("report.json".into(), b"new".to_vec()),
            ("manifest.json".into(), b"new".to_vec()),
        ],
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::Io {
                action: "replace",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(read(&dir.join("report.json")), "the previous report");

    // And a successful write replaces the old files.
    std::fs::remove_dir(dir.join("manifest.json")).unwrap();
    report::write_all(dir, &report).unwrap();
    assert!(read(&dir.join("report.json")).starts_with('{'));
}

#[test]
fn bad_report_files_name_the_file_line_and_column() {
    let scratch = Scratch::new("bad-json");
    let path = scratch.0.join("report.json");
    std::fs::write(
        &path,
        "{\n  \"format_version\": 1,\n  \"manifest\": nope\n}",
    )
    .unwrap();
    let e = Report::read_json(&path).unwrap_err();
    match &e {
        EvalError::Json { path: p, line, .. } => {
            assert_eq!(p, &path);
            assert_eq!(*line, 3);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("report.json` line 3, column"), "{e}");
    let e = Report::read_json(&scratch.0.join("missing.json")).unwrap_err();
    assert!(
        matches!(
            &e,
            EvalError::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{e}"
    );
    // A report of another format version is refused by name.
    let (report, _) = report_with_walk_forward();
    let mut json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    json["format_version"] = 99.into();
    std::fs::write(&path, json.to_string()).unwrap();
    let e = Report::read_json(&path).unwrap_err();
    assert!(e.to_string().contains("format_version 99"), "{e}");
}

#[test]
fn results_of_different_spans_or_labels_are_not_compared() {
    let (report, _) = report_with_walk_forward();
    let mut results = report.results.clone();
    results[1].label = "agent".into();
    let e = Report::new(report.manifest.clone(), results, None).unwrap_err();
    assert!(
        e.to_string().contains("two results are labelled `agent`"),
        "{e}"
    );
    let mut results = report.results.clone();
    results[2].equity.pop();
    let e = Report::new(report.manifest.clone(), results, None).unwrap_err();
    assert!(e.to_string().contains("same span"), "{e}");
    let e = Report::new(
        report.manifest.clone(),
        report.results.clone(),
        Some("nope"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("benchmark `nope`"), "{e}");
}

#[test]
fn manifest_hash_and_commit() {
    let (market, _) = market_and_dates(2, 50);
    let h = market_hash(&market);
    assert!(h.starts_with("fnv1a64:") && h.len() == 8 + 16, "{h}");
    assert_eq!(h, market_hash(&market), "stable");
    let mut close = market.close_all().to_vec();
    close[57] = f64::from_bits(close[57].to_bits() + 1);
    let other = Market::from_close(2, close).unwrap();
    let other = other
        .with_asset_names(vec!["STK0".into(), "STK1".into()])
        .unwrap();
    assert_ne!(
        h,
        market_hash(&other),
        "one ulp of one price changes the hash"
    );

    // Outside a repository (or without git) the commit is None, never an error.
    let scratch = Scratch::new("no-git");
    assert_eq!(quantrl_eval::git_commit(&scratch.0), None);
    if let Some(c) = quantrl_eval::git_commit(Path::new(env!("CARGO_MANIFEST_DIR"))) {
        assert_eq!(c.len(), 40);
    }
}

/// The walk-forward table: one block per window (title with its dates, the agent's mean and
/// interval over the two seeds, every baseline), then the stitched out-of-sample block.
#[test]
fn walk_forward_table_lists_every_window_and_the_aggregate() {
    let (report, _) = report_with_walk_forward();
    let wf = report.walk_forward.as_ref().unwrap();
    let table = format_walk_forward_table(wf);
    print!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    let n_baselines = wf.baselines_out_of_sample.len();
    assert!(
        n_baselines >= 3,
        "cash, buy-and-hold, equal weight at least"
    );
    // Three blocks of a title, a header, the agent and the baselines.
    assert_eq!(lines.len(), 3 * (3 + n_baselines), "{table}");
    for (k, block) in lines.chunks(3 + n_baselines).enumerate() {
        if k < 2 {
            let d = &wf.window_dates[k];
            assert!(
                block[0].starts_with(&format!("window {k}: train ")),
                "{}",
                block[0]
            );
            assert!(
                block[0].contains(&d.test_first.unwrap().to_string())
                    && block[0].contains(&d.train_last.unwrap().to_string()),
                "{}",
                block[0]
            );
        } else {
            assert!(
                block[0].starts_with("out of sample, all 2 windows"),
                "{}",
                block[0]
            );
        }
        for h in ["Sharpe", "AnnRet", "CumRet", "MaxDD"] {
            assert!(block[1].contains(h), "{h}: {}", block[1]);
        }
        // Two seeds: the agent's cells carry an interval.
        assert!(
            block[2].trim_start().starts_with("agent (2 seeds)"),
            "{}",
            block[2]
        );
        assert!(
            block[2].contains('[') && block[2].contains(']'),
            "{}",
            block[2]
        );
        let sharpe = match k {
            2 => wf.overall.sharpe_ratio.mean,
            _ => wf.per_window[k].sharpe_ratio.mean,
        };
        assert!(block[2].contains(&format!("{sharpe:.2}")), "{}", block[2]);
        for b in &wf.baselines_out_of_sample {
            assert!(
                block[3..]
                    .iter()
                    .any(|l| l.trim_start().starts_with(&b.label)),
                "{} missing from {block:?}",
                b.label
            );
        }
    }
}
