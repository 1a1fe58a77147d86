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
