//! The command line end to end: training writes a checkpoint and metrics, resume continues,
//! eval reads the checkpoint, and every bad input is a clear error with a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn quantrl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quantrl"))
        .args(args)
        .output()
        .expect("run quantrl")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quantrl-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fails_with(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "must not panic: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention `{n}`: {err}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn train_resume_eval_round_trip() {
    let dir = tmp("roundtrip");
    let out = dir.join("run");
    let o = quantrl(&[
        "train",
        "--env",
        "cartpole",
        "--steps",
        "2048",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "config.toml",
        "metrics.jsonl",
        "checkpoint/state.json",
        "checkpoint/model.mpk",
        "checkpoint/optimizer.mpk",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(metrics.lines().count() >= 8, "one line per update at least");
    assert!(
        metrics
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    let o = quantrl(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--steps",
        "4096",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["num_timesteps"], 4096);
    assert_eq!(state["format_version"], 1);
    let o = quantrl(&[
        "eval",
        "--checkpoint",
        out.to_str().unwrap(),
        "--episodes",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("evaluation return"));
}

#[test]
fn bad_configs_are_clear_errors() {
    let dir = tmp("configs");
    let clip = write(&dir, "clip.toml", "[ppo]\nclip_range = 1.5\n");
    fails_with(
        &quantrl(&["train", "--config", &clip, "--quiet"]),
        &["ppo.clip_range", "1.5", "clip.toml"],
    );
    let mb = write(&dir, "mb.toml", "[ppo]\nbatch_size = 1024\n");
    fails_with(
        &quantrl(&["train", "--config", &mb, "--quiet"]),
        &["ppo.batch_size", "1024", "256"],
    );
    let unknown = write(&dir, "unknown.toml", "[ppo]\nclip = 0.2\n");
    fails_with(
        &quantrl(&["train", "--config", &unknown, "--quiet"]),
        &["unknown field", "clip"],
    );
    fails_with(
        &quantrl(&["train", "--config", "/nonexistent/x.toml", "--quiet"]),
        &["cannot read config file", "/nonexistent/x.toml"],
    );
    fails_with(
        &quantrl(&["train", "--env", "pong", "--steps", "256", "--quiet"]),
        &["unknown environment", "pong", "cartpole"],
    );
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let dir = tmp("ckpt");
    fails_with(
        &quantrl(&[
            "eval",
            "--checkpoint",
            dir.join("nothing").to_str().unwrap(),
        ]),
        &["no checkpoint", "nothing"],
    );
    fails_with(
        &quantrl(&[
            "train",
            "--resume",
            dir.join("nothing").to_str().unwrap(),
            "--quiet",
        ]),
        &["no checkpoint"],
    );
    let out = dir.join("run");
    assert!(
        quantrl(&[
            "train",
            "--env",
            "cartpole",
            "--steps",
            "512",
            "--out",
            out.to_str().unwrap(),
            "--quiet"
        ])
        .status
        .success()
    );
    // Corrupt the weights: the hash check catches it before decoding.
    let model = out.join("checkpoint/model.mpk");
    let mut bytes = std::fs::read(&model).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&model, &bytes).unwrap();
    fails_with(
        &quantrl(&["eval", "--checkpoint", out.to_str().unwrap()]),
        &["corrupt", "model.mpk"],
    );
    // A truncated manifest.
    let state = out.join("checkpoint/state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, &text[..text.len() / 2]).unwrap();
    fails_with(
        &quantrl(&["eval", "--checkpoint", out.to_str().unwrap()]),
        &["corrupt", "state.json"],
    );
    // A future format version.
    std::fs::write(
        &state,
        text.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    fails_with(
        &quantrl(&["eval", "--checkpoint", out.to_str().unwrap()]),
        &["format_version 99"],
    );
}

/// The last `rows` days of the embedded S&P 500 panel as a CSV file (a valid `--data` file).
fn sp500_tail_csv(dir: &Path, rows: usize, corrupt: bool) -> String {
    use std::io::Read;
    let gz =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../quantrl-data/data/sp500_dataset.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![lines[0].to_string()];
    out.extend(lines[lines.len() - rows..].iter().map(|l| l.to_string()));
    if corrupt {
        let k = out.len() / 2;
        let mut cells: Vec<String> = out[k].split(',').map(String::from).collect();
        cells[3] = "abc".into();
        out[k] = cells.join(",");
    }
    write(
        dir,
        if corrupt { "bad.csv" } else { "tail.csv" },
        &(out.join("\n") + "\n"),
    )
}

/// `quantrl train` with no environment or config is the main job: recurrent PPO on the
/// embedded S&P 500 panel, validation-selected checkpoint, out-of-sample table against the
/// baselines, JSON/CSV report and PNG plots. Then `quantrl backtest` on the result, on a
/// data file, and its errors.
#[test]
fn main_job_and_backtest() {
    let dir = tmp("mainjob");
    let out = dir.join("run");
    let o = quantrl(&[
        "train",
        "--steps",
        "2048",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    for needle in [
        "main job",
        "validation 2013-2016",
        "out of sample",
        "buy-and-hold",
        "S&P 500 index",
        "cash",
    ] {
        assert!(
            stdout.contains(needle),
            "stdout should mention `{needle}`: {stdout}"
        );
    }
    for f in [
        "config.toml",
        "metrics.jsonl",
        "checkpoint/state.json",
        "best/state.json",
        "report/equity.png",
        "report/drawdown.png",
        "report/weights.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let report = std::fs::read_dir(out.join("report")).unwrap();
    let names: Vec<String> = report
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".json")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".csv")), "{names:?}");

    // Backtest the saved run: default test span, then a data file.
    let o = quantrl(&[
        "backtest",
        "--checkpoint",
        out.join("best").to_str().unwrap(),
        "--out",
        dir.join("bt").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("buy-and-hold"));
    let tail = sp500_tail_csv(&dir, 300, false);
    let o = quantrl(&[
        "backtest",
        "--checkpoint",
        out.to_str().unwrap(),
        "--data",
        &tail,
        "--out",
        dir.join("bt2").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // `quantrl eval` rebuilds the main job's environment from the registry name in the
    // checkpoint's config (the environment itself reports `Portfolio-v0`, no registry name).
    let o = quantrl(&[
        "eval",
        "--checkpoint",
        out.join("best").to_str().unwrap(),
        "--episodes",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        stdout.contains("sp500-regimes") && stdout.contains("evaluation return"),
        "{stdout}"
    );

    // Errors: a file with a bad row, a missing file, a checkpoint of another environment.
    let bad = sp500_tail_csv(&dir, 300, true);
    fails_with(
        &quantrl(&[
            "backtest",
            "--checkpoint",
            out.to_str().unwrap(),
            "--data",
            &bad,
        ]),
        &["bad.csv", "abc"],
    );
    fails_with(
        &quantrl(&[
            "backtest",
            "--checkpoint",
            out.to_str().unwrap(),
            "--data",
            "/nonexistent/prices.csv",
        ]),
        &["/nonexistent/prices.csv"],
    );
    let cartpole = dir.join("cartpole");
    assert!(
        quantrl(&[
            "train",
            "--env",
            "cartpole",
            "--steps",
            "256",
            "--out",
            cartpole.to_str().unwrap(),
            "--quiet"
        ])
        .status
        .success()
    );
    fails_with(
        &quantrl(&["backtest", "--checkpoint", cartpole.to_str().unwrap()]),
        &["cartpole", "not a trading environment"],
    );
}

/// A tiny walk-forward (2 windows, 2 seeds, one PPO iteration each) end to end: the table on
/// stdout, the report files, finite numbers, and windows where the test follows the training
/// without overlap (no look-ahead). Then `--seeds`/`--steps` overrides and bad configs.
#[test]
fn walk_forward_tiny() {
    let dir = tmp("walkforward");
    write(
        &dir,
        "tiny_train.toml",
        "env = \"sp500-regimes\"\n\
         [ppo]\nn_envs = 2\nn_steps = 64\nseq_len = 16\nbatch_size = 64\nn_epochs = 2\n\
         [policy]\nhidden = [16]\n\
         [policy.encoder]\nkind = \"gru\"\nhidden = 16\n",
    );
    let wf_text = "format_version = 1\n\
         train_config = \"tiny_train.toml\"\n\
         seeds = [0, 1]\n\
         steps_per_window = 128\n\
         [windows]\ntrain_years = 1\ntest_years = 1\nembargo_days = 3\n\
         first_date = \"2016-01-01\"\nlast_date = \"2018-12-31\"\n";
    let config = write(&dir, "wf.toml", wf_text);
    let out = dir.join("run");
    let o = quantrl(&[
        "walk-forward",
        "--config",
        &config,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    for needle in [
        "window 0: train 2016-",
        "window 1: train 2017-",
        "agent (2 seeds)",
        "buy-and-hold",
        "S&P 500 index",
        "out of sample, all 2 windows stitched",
    ] {
        assert!(
            stdout.contains(needle),
            "stdout should mention `{needle}`: {stdout}"
        );
    }
    for f in [
        "walk_forward.toml",
        "train_config.toml",
        "window0-seed0/checkpoint/state.json",
        "window1-seed1/checkpoint/state.json",
        "window1-seed1/metrics.jsonl",
        "report/report.json",
        "report/manifest.json",
        "report/metrics.csv",
        "report/walk_forward_oos.csv",
        "report/walk_forward_metrics.csv",
        "report/walk_forward.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report/report.json")).unwrap())
            .unwrap();
    let wf = &report["walk_forward"];
    let windows = wf["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    let range = |v: &serde_json::Value| {
        (
            v["start"].as_u64().unwrap() as usize,
            v["end"].as_u64().unwrap() as usize,
        )
    };
    let mut previous_test_end = 0;
    for w in windows {
        let (train, test) = (range(&w["train"]), range(&w["test"]));
        assert!(train.0 < train.1 && test.0 < test.1, "{w}");
        assert_eq!(
            test.0 - train.1,
            3,
            "the embargo separates train and test: {w}"
        );
        assert!(test.0 >= previous_test_end, "test windows overlap: {w}");
        previous_test_end = test.1;
    }
    // Dates: training ends before its test starts, and the second window trains on the first
    // test year (train on block k, test on block k + 1).
    let dates = wf["window_dates"].as_array().unwrap();
    for d in dates {
        assert!(d["train_last"].as_str().unwrap() < d["test_first"].as_str().unwrap());
    }
    assert!(
        dates[0]["test_first"]
            .as_str()
            .unwrap()
            .starts_with("2017-01")
    );
    assert!(
        dates[1]["train_first"]
            .as_str()
            .unwrap()
            .starts_with("2017-01")
    );
    assert!(
        dates[1]["test_last"]
            .as_str()
            .unwrap()
            .starts_with("2018-12")
    );
    // Out-of-sample series: one per seed, rows strictly increasing across the stitch, all
    // numbers finite; the aggregate has intervals from two seeds.
    let oos = wf["out_of_sample"].as_array().unwrap();
    assert_eq!(oos.len(), 2);
    for s in oos {
        let rows: Vec<u64> = s["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_u64().unwrap())
            .collect();
        assert!(rows.windows(2).all(|p| p[0] < p[1]), "rows must increase");
        assert_eq!(rows.len(), 251 + 251, "every test row once");
        for key in ["returns", "nav"] {
            for v in s[key].as_array().unwrap() {
                assert!(v.as_f64().is_some_and(f64::is_finite), "{key}: {v}");
            }
        }
    }
    for metric in ["sharpe_ratio", "annual_return", "max_drawdown"] {
        let i = &wf["overall"][metric];
        assert_eq!(i["n"], 2);
        for k in ["mean", "low", "high"] {
            assert!(
                i[k].as_f64().is_some_and(f64::is_finite),
                "overall {metric} {k}: {i}"
            );
        }
    }
    let metrics_csv = std::fs::read_to_string(out.join("report/walk_forward_metrics.csv")).unwrap();
    assert!(
        metrics_csv
            .lines()
            .any(|l| l.starts_with("overall,sharpe_ratio,2,"))
    );
    assert!(
        metrics_csv
            .lines()
            .any(|l| l.starts_with("window 1,sharpe_ratio,2,"))
    );

    // Overrides: one seed, steps per window; the settings as run are saved and rerun as is.
    let o = quantrl(&[
        "walk-forward",
        "--config",
        &config,
        "--seeds",
        "1",
        "--steps",
        "64",
        "--out",
        dir.join("run1").to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 windows x 1 seeds x 64 steps"));
    let saved = std::fs::read_to_string(dir.join("run1/walk_forward.toml")).unwrap();
    assert!(saved.contains("seeds = [0]") && saved.contains("steps_per_window = 64"));

    // Bad configs name the file and the key.
    let bad = |name: &str, text: &str, needles: &[&str]| {
        let path = write(&dir, name, text);
        fails_with(
            &quantrl(&["walk-forward", "--config", &path, "--quiet"]),
            &[&[name][..], needles].concat(),
        );
    };
    bad(
        "typo.toml",
        &wf_text.replace("train_years", "train_yaers"),
        &["unknown field", "train_yaers"],
    );
    bad(
        "noseeds.toml",
        &wf_text.replace("seeds = [0, 1]", "seeds = []"),
        &["`seeds`"],
    );
    bad(
        "zero.toml",
        &wf_text.replace("test_years = 1", "test_years = 0"),
        &["windows.test_years"],
    );
    bad(
        "date.toml",
        &wf_text.replace("2018-12-31", "2018-13-31"),
        &["windows.last_date", "2018-13-31"],
    );
    bad(
        "nofit.toml",
        &wf_text.replace("train_years = 1", "train_years = 5"),
        &["`windows`", "no walk-forward window fits"],
    );
    bad(
        "missing.toml",
        &wf_text.replace("tiny_train.toml", "nothere.toml"),
        &["train_config", "nothere.toml"],
    );
    write(&dir, "cartpole.toml", "env = \"cartpole\"\n");
    bad(
        "wrongenv.toml",
        &wf_text.replace("tiny_train.toml", "cartpole.toml"),
        &["train_config", "cartpole", "sp500-regimes"],
    );
    fails_with(
        &quantrl(&["walk-forward", "--config", &config, "--seeds", "0"]),
        &["seeds", "at least one"],
    );
}
