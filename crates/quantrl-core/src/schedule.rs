//! Serializable schedules for learning rates, clip ranges and coefficients.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// A value that changes with training progress.
///
/// `progress` is the fraction of training done, from 0 at the start to 1 at the end
/// (SB3's `progress_remaining` is `1 - progress`).
///
/// In TOML a constant is a bare number (`learning_rate = 3e-4`); the others are tables:
/// `learning_rate = { linear = { start = 1e-3, end = 0.0 } }` or
/// `{ cosine = { start = 1e-3, end = 1e-5 } }`.
///
/// ```
/// use quantrl_core::Schedule;
/// let s = Schedule::Linear { start: 1.0, end: 0.0 };
/// assert_eq!(s.value(0.25), 0.75);
/// assert_eq!(Schedule::Constant(0.2).value(0.9), 0.2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "ScheduleRepr", into = "ScheduleRepr")]
pub enum Schedule {
    /// The same value throughout.
    Constant(f64),
    /// Linear interpolation from `start` to `end`.
    Linear {
        /// Value at progress 0.
        start: f64,
        /// Value at progress 1.
        end: f64,
    },
    /// Cosine annealing from `start` to `end`.
    Cosine {
        /// Value at progress 0.
        start: f64,
        /// Value at progress 1.
        end: f64,
    },
}

/// On-disk form: a bare number, or `{ linear = {..} }` / `{ cosine = {..} }`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ScheduleRepr {
    Constant(f64),
    Tagged(Tagged),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Tagged {
    Linear { start: f64, end: f64 },
    Cosine { start: f64, end: f64 },
}

impl From<ScheduleRepr> for Schedule {
    fn from(r: ScheduleRepr) -> Self {
        match r {
            ScheduleRepr::Constant(v) => Schedule::Constant(v),
            ScheduleRepr::Tagged(Tagged::Linear { start, end }) => Schedule::Linear { start, end },
            ScheduleRepr::Tagged(Tagged::Cosine { start, end }) => Schedule::Cosine { start, end },
        }
    }
}

impl From<Schedule> for ScheduleRepr {
    fn from(s: Schedule) -> Self {
        match s {
            Schedule::Constant(v) => ScheduleRepr::Constant(v),
            Schedule::Linear { start, end } => ScheduleRepr::Tagged(Tagged::Linear { start, end }),
            Schedule::Cosine { start, end } => ScheduleRepr::Tagged(Tagged::Cosine { start, end }),
        }
    }
}

impl Schedule {
    /// The value at `progress` (clamped to `[0, 1]`).
    pub fn value(&self, progress: f64) -> f64 {
        let p = progress.clamp(0.0, 1.0);
        match *self {
            Schedule::Constant(v) => v,
            Schedule::Linear { start, end } => start + (end - start) * p,
            Schedule::Cosine { start, end } => {
                end + (start - end) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }

    /// The value at the start of training.
    pub fn initial(&self) -> f64 {
        self.value(0.0)
    }

    /// Check that every value the schedule takes satisfies `check` (it is monotone, so the
    /// end points suffice).
    pub fn validate_with(
        &self,
        check: impl Fn(f64) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        check(self.value(0.0))?;
        check(self.value(1.0))
    }
}

impl From<f64> for Schedule {
    fn from(v: f64) -> Self {
        Schedule::Constant(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Holder {
        lr: Schedule,
        clip: Schedule,
    }

    #[test]
    fn toml_round_trip() {
        let text = "lr = 0.001\nclip = { linear = { start = 0.2, end = 0.0 } }\n";
        let h: Holder = toml::from_str(text).unwrap();
        assert_eq!(h.lr, Schedule::Constant(0.001));
        assert_eq!(
            h.clip,
            Schedule::Linear {
                start: 0.2,
                end: 0.0
            }
        );
        let back: Holder = toml::from_str(&toml::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn cosine_end_points() {
        let s = Schedule::Cosine {
            start: 1.0,
            end: 0.1,
        };
        assert!((s.value(0.0) - 1.0).abs() < 1e-12);
        assert!((s.value(1.0) - 0.1).abs() < 1e-12);
        assert!((s.value(0.5) - 0.55).abs() < 1e-12);
    }
}
