//! # quantrl-testkit
//!
//! Loads the golden reference files (numbers produced by Stable-Baselines3, PyTorch,
//! gymnasium and friends) and compares results with the tolerance each file states.
//!
//! The directory is `$QUANTRL_GOLDEN_DIR` when set (relative paths are taken from the
//! workspace root), else `../shared/golden` beside the repository. When neither exists, the
//! copy of the public set shipped in `crates/quantrl-testkit/golden` is used, so the tests run
//! on a clone that has no `../shared`.
//!
//! JSON conventions: `null` is NaN, the strings `"Infinity"` / `"-Infinity"` are infinities,
//! nested lists are row-major tensors.

use std::path::{Path, PathBuf};

pub use serde_json::Value;

/// Workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The golden directory in use (see the crate docs).
pub fn golden_dir() -> PathBuf {
    let root = workspace_root();
    if let Ok(dir) = std::env::var("QUANTRL_GOLDEN_DIR") {
        let p = PathBuf::from(&dir);
        let p = if p.is_absolute() { p } else { root.join(p) };
        assert!(
            p.is_dir(),
            "QUANTRL_GOLDEN_DIR={dir} is not a directory ({})",
            p.display()
        );
        return p;
    }
    let shared = root.join("../shared/golden");
    if shared.is_dir() {
        return shared;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// A parsed golden file.
#[derive(Debug, Clone)]
pub struct Golden {
    /// The whole JSON document.
    pub doc: Value,
    /// Where it came from.
    pub path: PathBuf,
}

/// Load `<golden_dir>/<family>.json`.
pub fn load(family: &str) -> Golden {
    let path = golden_dir().join(format!("{family}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read golden file {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("golden file {} is not JSON: {e}", path.display()));
    Golden { doc, path }
}

impl Golden {
    /// The cases of the file (panics with the path when there are none).
    pub fn cases(&self) -> &[Value] {
        let cases = self.doc["cases"]
            .as_array()
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        assert!(!cases.is_empty(), "{} has no cases", self.path.display());
        cases
    }

    /// The tolerance for `block` (e.g. `expected`) of `case`: the case's own tolerance when
    /// given, else the file's; keyed tolerances (`{"expected": {...}}`) are looked up by block.
    pub fn tolerance(&self, case: &Value, block: &str) -> Tol {
        let pick = |t: &Value| -> Option<Tol> {
            if t.get("rtol").is_some() || t.get("atol").is_some() {
                Some(Tol::from_json(t))
            } else {
                t.get(block).map(Tol::from_json)
            }
        };
        case.get("tolerance")
            .and_then(pick)
            .or_else(|| pick(&self.doc["tolerance"]))
            .unwrap_or_else(|| panic!("{}: no tolerance for block `{block}`", self.path.display()))
    }
}

/// `|actual - expected| <= atol + rtol * |expected|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tol {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

impl Tol {
    fn from_json(v: &Value) -> Self {
        Tol {
            rtol: v.get("rtol").and_then(Value::as_f64).unwrap_or(0.0),
            atol: v.get("atol").and_then(Value::as_f64).unwrap_or(0.0),
        }
    }

    /// Whether `actual` is close enough to `expected` (NaN matches NaN, infinities match
    /// themselves).
    pub fn close(&self, actual: f64, expected: f64) -> bool {
        if expected.is_nan() || actual.is_nan() {
            return expected.is_nan() && actual.is_nan();
        }
        if expected.is_infinite() || actual.is_infinite() {
            return expected == actual;
        }
        (actual - expected).abs() <= self.atol + self.rtol * expected.abs()
    }

    /// Assert element-wise closeness, naming the case, the field and the first bad index.
    pub fn assert_all(&self, what: &str, actual: &[f64], expected: &[f64]) {
        assert_eq!(
            actual.len(),
            expected.len(),
            "{what}: length {} != expected {}",
            actual.len(),
            expected.len()
        );
        for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                self.close(a, e),
                "{what}[{i}]: got {a:e}, expected {e:e} (rtol {}, atol {})",
                self.rtol,
                self.atol
            );
        }
    }

    /// Assert one scalar.
    pub fn assert_scalar(&self, what: &str, actual: f64, expected: f64) {
        self.assert_all(what, &[actual], &[expected]);
    }
}

/// A JSON number, `null` (NaN) or `"Infinity"`/`"-Infinity"` as f64.
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Null => f64::NAN,
        Value::Number(n) => n.as_f64().expect("number"),
        Value::String(s) if s == "Infinity" => f64::INFINITY,
        Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::Bool(b) => *b as u8 as f64,
        other => panic!("not a number: {other}"),
    }
}

/// Flatten a nested list of numbers (row-major) into f64.
pub fn flat(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    fn go(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| go(x, out)),
            x => out.push(num(x)),
        }
    }
    go(v, &mut out);
    out
}

/// Flatten a nested list into f32 (exact for float32-widened values).
pub fn flat_f32(v: &Value) -> Vec<f32> {
    flat(v).into_iter().map(|x| x as f32).collect()
}

/// The shape of a nested list.
pub fn shape(v: &Value) -> Vec<usize> {
    let mut s = Vec::new();
    let mut cur = v;
    while let Value::Array(a) = cur {
        s.push(a.len());
        match a.first() {
            Some(x) => cur = x,
            None => break,
        }
    }
    s
}

/// Case name, for messages.
pub fn name(case: &Value) -> &str {
    case["name"].as_str().unwrap_or("<unnamed>")
}
