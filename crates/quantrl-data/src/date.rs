//! Calendar dates of daily market data.
//!
//! A [`Date`] is a day number (days since 1970-01-01, negative before), the same numbers that
//! [`crate::split::parse_date`] returns, so dates from a loaded file split with
//! [`crate::split::split_by_date`] directly. It prints as `YYYY-MM-DD`.
//!
//! Text dates are parsed with a small `strftime`-like format: `%Y` (four-digit year), `%m`
//! (month, one or two digits), `%d` (day, one or two digits), `%H`, `%M`, `%S` (a time of day,
//! read and ignored: the data is daily), `%%` (a literal `%`); any other character must match
//! itself. A loader without [`crate::LoadOptions::date_format`] picks the first of
//! [`DATE_FORMATS`] that reads every date of the column (and refuses a column that two formats
//! read differently, such as `01/02/2020`).

use std::fmt;
use std::str::FromStr;

use quantrl_core::ConfigError;

use crate::DataError;

/// A calendar day (proleptic Gregorian), stored as days since 1970-01-01.
///
/// ```
/// use quantrl_data::Date;
/// let d: Date = "2020-02-29".parse()?;
/// assert_eq!(d.ymd(), (2020, 2, 29));
/// assert_eq!(d.to_string(), "2020-02-29");
/// assert_eq!(Date::from_ymd(2020, 3, 1)?.days_since_epoch() - d.days_since_epoch(), 1);
/// # Ok::<(), quantrl_data::DataError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    days: i32,
}

impl Date {
    /// The date `days` days after 1970-01-01 (before it where negative).
    pub fn from_days_since_epoch(days: i32) -> Self {
        Self { days }
    }

    /// A date from year, month (1 to 12) and day of month; an error if no such day exists.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Result<Self, DataError> {
        match days_of(year, month, day) {
            Ok(days) => Ok(Self { days }),
            Err(reason) => Err(DataError::InvalidDate {
                what: "date".into(),
                value: format!("{year:04}-{month:02}-{day:02}"),
                reason: reason.into(),
            }),
        }
    }

    /// Days since 1970-01-01 (negative before): the day numbers of [`crate::split`].
    pub fn days_since_epoch(self) -> i32 {
        self.days
    }

    /// `(year, month, day)`.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.days)
    }

    /// Parse `text` with a format such as `%Y-%m-%d` or `%d/%m/%Y` (see the module docs).
    ///
    /// ```
    /// use quantrl_data::Date;
    /// assert_eq!(Date::parse_with("22.05.2009", "%d.%m.%Y")?.to_string(), "2009-05-22");
    /// assert!(Date::parse_with("2009-05-32", "%Y-%m-%d").is_err());
    /// # Ok::<(), quantrl_data::DataError>(())
    /// ```
    pub fn parse_with(text: &str, format: &str) -> Result<Self, DataError> {
        check_date_format(format)?;
        parse_date_with(text, format)
            .map(Self::from_days_since_epoch)
            .map_err(|reason| DataError::InvalidDate {
                what: format!("date (format `{format}`)"),
                value: text.into(),
                reason,
            })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Prints as `YYYY-MM-DD`, so errors about dates (e.g. from [`crate::split::split_by_date`])
/// read naturally.
impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses `YYYY-MM-DD`.
impl FromStr for Date {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with(s, "%Y-%m-%d")
    }
}

/// The formats the loaders try on a date column whose format is not given, in order.
pub const DATE_FORMATS: [&str; 9] = [
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m/%d/%Y",
    "%d/%m/%Y",
];

/// Check that a date format uses only the supported directives.
pub(crate) fn check_date_format(format: &str) -> Result<(), DataError> {
    let mut chars = format.chars();
    let mut has = [false; 3];
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some('Y') => has[0] = true,
            Some('m') => has[1] = true,
            Some('d') => has[2] = true,
            Some('H' | 'M' | 'S' | '%') => {}
            other => {
                let directive = other.map_or("%".to_string(), |c| format!("%{c}"));
                return Err(ConfigError::Inconsistent(format!(
                    "date format `{format}`: unsupported directive `{directive}` \
                     (supported: %Y %m %d %H %M %S %%)"
                ))
                .into());
            }
        }
    }
    if has.iter().all(|&h| h) {
        Ok(())
    } else {
        Err(
            ConfigError::Inconsistent(format!("date format `{format}` must contain %Y, %m and %d"))
                .into(),
        )
    }
}

/// The first format of [`DATE_FORMATS`] that parses every value, or `Err(None)` when several
/// parse every value but read them differently (`%m/%d/%Y` and `%d/%m/%Y` when no day
/// exceeds 12), or `Err(Some((row, format)))`: no format parses everything, and the format
/// that parses the first value fails first at `row`.
pub(crate) fn detect_date_format<'a>(
    values: impl Fn() -> Box<dyn Iterator<Item = &'a str> + 'a>,
) -> Result<&'static str, DetectError> {
    let mut parsing_all: Vec<&'static str> = Vec::new();
    let mut first_failure: Option<(usize, &'static str)> = None;
    for format in DATE_FORMATS {
        let failure = values()
            .enumerate()
            .find(|(_, v)| parse_date_with(v, format).is_err());
        match failure {
            None => parsing_all.push(format),
            Some((row, _)) => {
                if row > 0 && first_failure.is_none_or(|(r, _)| row > r) {
                    first_failure = Some((row, format));
                }
            }
        }
    }
    match parsing_all.as_slice() {
        [] => Err(DetectError::NoFormat(first_failure)),
        [only] => Ok(*only),
        [first, rest @ ..] => {
            let same = rest.iter().all(|other| {
                values().all(|v| parse_date_with(v, first).ok() == parse_date_with(v, other).ok())
            });
            if same {
                Ok(*first)
            } else {
                Err(DetectError::Ambiguous(parsing_all))
            }
        }
    }
}

/// Why [`detect_date_format`] found no format.
pub(crate) enum DetectError {
    /// No format parses every value; the format that got furthest and the row it failed at.
    NoFormat(Option<(usize, &'static str)>),
    /// Several formats parse every value and disagree.
    Ambiguous(Vec<&'static str>),
}

/// Days since the epoch of `text` read with `format`, or why it cannot be read.
pub(crate) fn parse_date_with(text: &str, format: &str) -> Result<i32, String> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let mut pos = 0;
    let (mut year, mut month, mut day) = (None, None, None);
    let mut fmt = format.chars();
    let mismatch = || format!("does not match the format `{format}`");
    while let Some(c) = fmt.next() {
        if c == '%' {
            let directive = fmt.next().ok_or_else(mismatch)?;
            let (min, max) = match directive {
                'Y' => (4, 4),
                'm' | 'd' | 'H' | 'M' | 'S' => (1, 2),
                '%' => {
                    if bytes.get(pos) != Some(&b'%') {
                        return Err(mismatch());
                    }
                    pos += 1;
                    continue;
                }
                _ => return Err(format!("unsupported directive `%{directive}`")),
            };
            let len = bytes[pos..]
                .iter()
                .take(max)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if len < min {
                return Err(mismatch());
            }
            let number: i32 = text[pos..pos + len].parse().map_err(|_| mismatch())?;
            pos += len;
            match directive {
                'Y' => year = Some(number),
                'm' => month = Some(number),
                'd' => day = Some(number),
                'H' if number > 23 => return Err("hour must be 0 to 23".into()),
                'M' | 'S' if number > 59 => return Err("minute/second must be 0 to 59".into()),
                _ => {}
            }
        } else {
            let mut buf = [0u8; 4];
            let expected = c.encode_utf8(&mut buf).as_bytes();
            if !bytes[pos..].starts_with(expected) {
                return Err(mismatch());
            }
            pos += expected.len();
        }
    }
    if pos != bytes.len() {
        return Err(mismatch());
    }
    match (year, month, day) {
        (Some(y), Some(m), Some(d)) => {
            days_of(y, m as u32, d as u32).map_err(|reason| reason.to_string())
        }
        _ => Err(format!("the format `{format}` lacks %Y, %m or %d")),
    }
}

fn days_of(year: i32, month: u32, day: u32) -> Result<i32, &'static str> {
    if !(1..=12).contains(&month) {
        return Err("month must be 01 to 12");
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=days_in_month).contains(&day) {
        return Err("no such day in that month");
    }
    Ok(days_from_civil(year, month as i32, day as i32))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i32, month: i32, day: i32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`] (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_over_centuries() {
        for days in (-200_000..200_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m as i32, d as i32), days, "{y}-{m}-{d}");
        }
        assert_eq!(Date::from_ymd(1970, 1, 1).unwrap().days_since_epoch(), 0);
        assert_eq!(Date::from_ymd(1969, 12, 31).unwrap().days_since_epoch(), -1);
    }

    #[test]
    fn formats_parse_and_refuse() {
        let iso = |s: &str| parse_date_with(s, "%Y-%m-%d");
        assert_eq!(iso("2000-03-01").unwrap() - iso("2000-02-28").unwrap(), 2);
        assert!(iso("2021-02-29").is_err());
        assert!(iso("2021-13-01").is_err());
        assert!(iso("2021-01-01x").is_err());
        assert!(iso("21-01-01").is_err());
        assert_eq!(
            parse_date_with("1/2/2020", "%m/%d/%Y"),
            iso("2020-01-02"),
            "one-digit month and day"
        );
        assert_eq!(
            parse_date_with("2020-01-02 16:00:00", "%Y-%m-%d %H:%M:%S"),
            iso("2020-01-02")
        );
        assert!(parse_date_with("2020-01-02 24:00:00", "%Y-%m-%d %H:%M:%S").is_err());
        assert!(check_date_format("%Y-%m").is_err());
        assert!(check_date_format("%Y-%b-%d").is_err());
        assert!(Date::parse_with("2020-01-01", "%Y-%q-%d").is_err());
    }

    #[test]
    fn detection_picks_the_format_or_says_why_not() {
        let boxed = |v: &'static [&'static str]| {
            move || Box::new(v.iter().copied()) as Box<dyn Iterator<Item = &str>>
        };
        assert!(matches!(
            detect_date_format(boxed(&["2020-01-02", "2020-01-03"])),
            Ok("%Y-%m-%d")
        ));
        assert!(matches!(
            detect_date_format(boxed(&["01/02/2020", "01/13/2020"])),
            Ok("%m/%d/%Y")
        ));
        assert!(matches!(
            detect_date_format(boxed(&["01/02/2020", "01/03/2020"])),
            Err(DetectError::Ambiguous(_))
        ));
        assert!(matches!(
            detect_date_format(boxed(&["2020-01-02", "2020-01-03", "soon"])),
            Err(DetectError::NoFormat(Some((2, "%Y-%m-%d"))))
        ));
    }
}
