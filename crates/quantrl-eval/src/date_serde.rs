//! Serde for optional [`Date`]s as `"YYYY-MM-DD"` strings (`null` when absent).
//!
//! `quantrl_data::Date` has no serde of its own; reports write dates the way people and
//! spreadsheets read them.

use quantrl_data::Date;
use serde::{Deserialize, Deserializer, Serializer};

/// Write `Some(date)` as `"YYYY-MM-DD"`, `None` as `null`.
pub(crate) fn serialize<S: Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(d) => s.collect_str(d),
        None => s.serialize_none(),
    }
}

/// Read a date written by [`serialize`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

/// `YYYY-MM-DD` of an optional date, for errors and CSV cells (empty when absent).
pub(crate) fn fmt(date: Option<Date>) -> String {
    date.map(|d| d.to_string()).unwrap_or_default()
}
