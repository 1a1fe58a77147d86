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
