//! Chronological train/validation/test splits and walk-forward windows.
//!
//! Time series are never shuffled: every split here keeps train before validation before
//! test, as index ranges into the data. An optional *embargo* drops rows between the parts, so
//! that features with a look-back or labels with a horizon cannot straddle a boundary.
//!
//! Dates are anything sorted and comparable: [`crate::Date`] (what the loaders return), day
//! numbers (`i32`, `i64`) or `YYYY-MM-DD` strings, which sort like the dates they name.
//! [`parse_date`] turns such a string into a day number and reports malformed dates.

use std::fmt::Debug;
use std::ops::Range;

use quantrl_core::{ConfigError, check_closed, check_open};
use serde::{Deserialize, Serialize};

use crate::DataError;

/// A chronological split: three consecutive, disjoint index ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Rows to fit on.
    pub train: Range<usize>,
    /// Rows to select models on (may be empty).
    pub validation: Range<usize>,
    /// Rows to report on.
    pub test: Range<usize>,
}

impl Split {
    /// The same split with `embargo` rows dropped at the start of validation and of test. A
    /// validation part shorter than the embargo becomes empty; a test part that would become
    /// empty is an error.
    pub fn with_embargo(&self, embargo: usize) -> Result<Split, DataError> {
        let cut = |r: &Range<usize>| (r.start + embargo).min(r.end)..r.end;
        let split = Split {
            train: self.train.clone(),
            validation: cut(&self.validation),
            test: cut(&self.test),
        };
        if split.test.is_empty() {
            return Err(DataError::TooShort {
                what: format!("test part after an embargo of {embargo} rows"),
                needed: embargo + 1,
                available: self.test.len(),
            });
        }
        Ok(split)
    }
}

/// Split `n` rows at two indices: train `0..validation_start`, validation
/// `validation_start..test_start`, test `test_start..n`. Train and test must be non-empty;
/// validation may be empty (`validation_start == test_start`).
pub fn split_by_index(
    n: usize,
    validation_start: usize,
    test_start: usize,
) -> Result<Split, DataError> {
    if validation_start == 0 {
        return Err(DataError::EmptyPart {
            part: "train",
            len: n,
        });
    }
    if test_start >= n {
        return Err(DataError::EmptyPart {
            part: "test",
            len: n,
        });
    }
    if validation_start > test_start {
        return Err(DataError::OutOfBounds {
            what: "validation_start".into(),
            value: validation_start,
            allowed: format!("<= test_start = {test_start}"),
        });
    }
    Ok(Split {
        train: 0..validation_start,
        validation: validation_start..test_start,
        test: test_start..n,
    })
}

/// Split `n` rows by fractions: the first `floor(train * n)` rows train, the next
/// `floor((train + validation) * n) - floor(train * n)` validate, the rest test.
pub fn split_by_fraction(n: usize, train: f64, validation: f64) -> Result<Split, DataError> {
    check_open("split.train", train, 0.0, 1.0)?;
    check_closed("split.validation", validation, 0.0, 1.0)?;
    if train + validation >= 1.0 {
        return Err(ConfigError::Inconsistent(format!(
            "split.train + split.validation = {} leaves no test data; must be < 1",
            train + validation
        ))
        .into());
    }
    let at = |f: f64| (f * n as f64).floor() as usize;
    split_by_index(n, at(train), at(train + validation))
}

/// Split sorted dates: train is every row dated before `validation_start`, validation the
/// rows from `validation_start` to before `test_start`, test the rest. Dates must be
/// non-decreasing (several rows may share a date).
///
/// ```
/// use quantrl_data::split::split_by_date;
/// let dates = ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"];
/// let s = split_by_date(&dates, &"2020-01-03", &"2020-01-07").unwrap();
/// assert_eq!((s.train, s.validation, s.test), (0..1, 1..3, 3..4));
/// ```
pub fn split_by_date<D: Ord + Debug>(
    dates: &[D],
    validation_start: &D,
    test_start: &D,
) -> Result<Split, DataError> {
    check_sorted(dates)?;
    if validation_start > test_start {
        return Err(ConfigError::Inconsistent(format!(
            "validation_start {validation_start:?} is after test_start {test_start:?}"
        ))
        .into());
    }
    let v = dates.partition_point(|d| d < validation_start);
    let t = dates.partition_point(|d| d < test_start);
    split_by_index(dates.len(), v, t)
}

/// [`split_by_date`] on `YYYY-MM-DD` strings, each checked to be a real calendar date (so a
/// typo such as `2020-13-01` or `2020-1-5`, which would sort wrongly, is an error).
pub fn split_by_date_str<S: AsRef<str>>(
    dates: &[S],
    validation_start: &str,
    test_start: &str,
) -> Result<Split, DataError> {
    let days = parse_dates(dates)?;
    let v = parse_named("validation_start", validation_start)?;
    let t = parse_named("test_start", test_start)?;
    split_by_date(&days, &v, &t)
}

fn check_sorted<D: Ord + Debug>(dates: &[D]) -> Result<(), DataError> {
    match dates.windows(2).position(|w| w[1] < w[0]) {
        None => Ok(()),
        Some(i) => Err(DataError::UnsortedDates {
            index: i + 1,
            value: format!("{:?}", dates[i + 1]),
            previous: format!("{:?}", dates[i]),
        }),
    }
}

/// Parse a `YYYY-MM-DD` date into days since 1970-01-01 (negative before).
///
/// ```
/// use quantrl_data::split::parse_date;
/// assert_eq!(parse_date("1970-01-02").unwrap(), 1);
/// assert_eq!(parse_date("2000-03-01").unwrap() - parse_date("2000-02-28").unwrap(), 2);
/// assert!(parse_date("2021-02-29").is_err());
/// ```
pub fn parse_date(text: &str) -> Result<i32, DataError> {
    parse_named("date", text)
}

/// Parse a column of `YYYY-MM-DD` dates into day numbers; errors name the row.
pub fn parse_dates<S: AsRef<str>>(dates: &[S]) -> Result<Vec<i32>, DataError> {
    dates
        .iter()
        .enumerate()
        .map(|(i, d)| parse_named(&format!("dates[{i}]"), d.as_ref()))
        .collect()
}

fn parse_named(what: &str, text: &str) -> Result<i32, DataError> {
    let bad = |reason: &str| DataError::InvalidDate {
        what: what.into(),
        value: text.into(),
        reason: reason.into(),
    };
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(bad("expected YYYY-MM-DD"));
    }
    let field = |r: Range<usize>| text[r].parse::<i32>().expect("digits");
    let (year, month, day) = (field(0..4), field(5..7), field(8..10));
    if !(1..=12).contains(&month) {
        return Err(bad("month must be 01 to 12"));
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=days_in_month).contains(&day) {
        return Err(bad("no such day in that month"));
    }
    Ok(crate::date::days_from_civil(year, month, day))
}

/// How the training window of a walk-forward evaluation moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowMode {
    /// A fixed-length training window that slides forward with the test window.
    Rolling,
    /// A training window that always starts at row 0 and grows.
    Expanding,
}

/// Walk-forward evaluation: train on a window, test on the window after it, move forward by
/// one test window, repeat.
///
/// Fold `k` tests on rows `train_len + embargo + k * test_len ..` (`test_len` rows); its
/// training window ends `embargo` rows before the test starts and is `train_len` rows long
/// (rolling) or starts at row 0 (expanding). Test windows tile the data without overlap; a
/// last partial test window is dropped. With `train_len == test_len`, rolling and no embargo,
/// this is "train on block k, test on block k + 1".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalkForwardConfig {
    /// Rows in the (first) training window.
    pub train_len: usize,
    /// Rows in each test window.
    pub test_len: usize,
    /// Rows skipped between the end of training and the start of the test.
    pub embargo: usize,
    /// Rolling or expanding training window.
    pub mode: WindowMode,
}

impl Default for WalkForwardConfig {
    /// Two years of daily training, a quarter of testing, a week of embargo.
    fn default() -> Self {
        Self {
            train_len: 504,
            test_len: 63,
            embargo: 5,
            mode: WindowMode::Rolling,
        }
    }
}

/// One walk-forward fold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// Fold number, from 0.
    pub index: usize,
    /// Rows to train on.
    pub train: Range<usize>,
    /// Rows to test on; `train.end + embargo == test.start`.
    pub test: Range<usize>,
}

impl WalkForwardConfig {
    /// Check the window lengths (both at least 1).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.train_len == 0 {
            return Err(ConfigError::out_of_range(
                "walk_forward.train_len",
                0,
                ">= 1",
            ));
        }
        if self.test_len == 0 {
            return Err(ConfigError::out_of_range(
                "walk_forward.test_len",
                0,
                ">= 1",
            ));
        }
        Ok(())
    }

    /// The folds over `n` rows; an error when not even one fits.
    pub fn folds(&self, n: usize) -> Result<Vec<Fold>, DataError> {
        self.validate()?;
        let first_test = self.train_len + self.embargo;
        let needed = first_test + self.test_len;
        if needed > n {
            return Err(DataError::TooShort {
                what: format!(
                    "walk-forward train_len {} + embargo {} + test_len {}",
                    self.train_len, self.embargo, self.test_len
                ),
                needed,
                available: n,
            });
        }
        let count = (n - first_test) / self.test_len;
        Ok((0..count)
            .map(|index| {
                let test_start = first_test + index * self.test_len;
                let train_end = test_start - self.embargo;
                let train_start = match self.mode {
                    WindowMode::Rolling => train_end - self.train_len,
                    WindowMode::Expanding => 0,
                };
                Fold {
                    index,
                    train: train_start..train_end,
                    test: test_start..test_start + self.test_len,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_split_covers_everything_in_order() {
        let s = split_by_fraction(100, 0.6, 0.2).unwrap();
        assert_eq!((s.train, s.validation, s.test), (0..60, 60..80, 80..100));
        assert!(split_by_fraction(100, 0.8, 0.2).is_err());
        assert!(matches!(
            split_by_fraction(1, 0.5, 0.0),
            Err(DataError::EmptyPart { part: "train", .. })
        ));
    }

    #[test]
    fn embargo_drops_rows_after_each_boundary() {
        let s = split_by_index(20, 10, 15).unwrap().with_embargo(2).unwrap();
        assert_eq!((s.train, s.validation, s.test), (0..10, 12..15, 17..20));
        assert!(split_by_index(20, 10, 15).unwrap().with_embargo(5).is_err());
    }

    #[test]
    fn date_splits_on_numbers_and_strings() {
        let days = [10, 11, 11, 14, 15, 20];
        let s = split_by_date(&days, &11, &15).unwrap();
        assert_eq!((s.train, s.validation, s.test), (0..1, 1..4, 4..6));
        assert!(matches!(
            split_by_date(&[3, 2], &2, &3),
            Err(DataError::UnsortedDates { index: 1, .. })
        ));
        let strs = ["2019-12-31", "2020-01-02", "2020-02-03", "2020-03-02"];
        let s = split_by_date_str(&strs, "2020-01-01", "2020-03-01").unwrap();
        assert_eq!((s.train, s.validation, s.test), (0..1, 1..3, 3..4));
        let err = split_by_date_str(&["2020-01-01", "2020-1-5"], "2020-01-01", "2020-01-02");
        assert!(matches!(err, Err(DataError::InvalidDate { what, .. }) if what == "dates[1]"));
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(parse_date("1970-01-01").unwrap(), 0);
        assert_eq!(parse_date("2000-01-01").unwrap(), 10_957);
        assert_eq!(parse_date("1969-12-31").unwrap(), -1);
        assert_eq!(parse_date("2024-02-29").unwrap(), 19_782);
        assert!(parse_date("1900-02-29").is_err());
        assert!(parse_date("2020/01/01").is_err());
    }

    #[test]
    fn walk_forward_rolling_and_expanding() {
        let c = WalkForwardConfig {
            train_len: 10,
            test_len: 5,
            embargo: 2,
            mode: WindowMode::Rolling,
        };
        let folds = c.folds(30).unwrap();
        assert_eq!(folds.len(), 3);
        assert_eq!(
            (folds[0].train.clone(), folds[0].test.clone()),
            (0..10, 12..17)
        );
        assert_eq!(
            (folds[2].train.clone(), folds[2].test.clone()),
            (10..20, 22..27)
        );
        let e = WalkForwardConfig {
            mode: WindowMode::Expanding,
            ..c.clone()
        }
        .folds(30)
        .unwrap();
        assert_eq!(e[2].train, 0..20);
        assert!(matches!(
            c.folds(16),
            Err(DataError::TooShort {
                needed: 17,
                available: 16,
                ..
            })
        ));
    }
}
