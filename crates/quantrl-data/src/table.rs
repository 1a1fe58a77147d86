//! The one place that names polars: read CSV / gzip'd CSV / Parquet bytes into a table and
//! hand its columns out as plain dates and numbers, with errors that name the file, the
//! column, the row and the value.
//!
//! CSV columns are read as text and parsed here (not by polars' type inference), so that a
//! bad cell is reported with its row and its text rather than turned into a null or a whole-
//! file error. Before polars sees a CSV, a quick scan checks that every line has as many
//! fields as the header (polars would pad short rows with nulls).

use std::io::{Cursor, Read};

use polars::prelude::{
    CsvParseOptions, CsvReadOptions, DataFrame, DataType, ParquetReader, SerReader, TimeUnit,
};

use crate::date::{DetectError, check_date_format, detect_date_format, parse_date_with};
use crate::{DataError, Date, FileFormat};

/// Cells read as missing in a CSV file (besides an empty cell).
const MISSING: [&str; 6] = ["NA", "N/A", "#N/A", "null", "NULL", "None"];

/// A table read from one file; polars stays inside.
pub(crate) struct Table {
    file: String,
    df: DataFrame,
}

impl Table {
    /// Read `bytes` (named `file` in errors) as `format`.
    pub(crate) fn read(
        bytes: &[u8],
        file: &str,
        format: FileFormat,
        separator: u8,
    ) -> Result<Table, DataError> {
        let df = match format {
            FileFormat::Csv | FileFormat::CsvGz => {
                let is_gzip = bytes.starts_with(&[0x1f, 0x8b]);
                let decompressed;
                let text = if is_gzip {
                    decompressed = gunzip(bytes, file)?;
                    &decompressed[..]
                } else if format == FileFormat::CsvGz {
                    return Err(malformed(file, "gzip'd CSV", "no gzip header"));
                } else {
                    bytes
                };
                read_csv(text, file, separator)?
            }
            FileFormat::Parquet => ParquetReader::new(Cursor::new(bytes))
                .finish()
                .map_err(|e| malformed(file, "Parquet", e))?,
        };
        if df.width() == 0 {
            return Err(DataError::EmptyData {
                file: file.into(),
                reason: "no columns".into(),
            });
        }
        if df.height() == 0 {
            return Err(DataError::EmptyData {
                file: file.into(),
                reason: "no data rows".into(),
            });
        }
        Ok(Table {
            file: file.into(),
            df,
        })
    }

    /// Number of data rows.
    pub(crate) fn height(&self) -> usize {
        self.df.height()
    }

    /// Column names in file order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .into_iter()
            .map(|n| n.to_string())
            .collect()
    }

    /// The error for a column that is not there.
    pub(crate) fn missing_column(&self, column: &str) -> DataError {
        DataError::MissingColumn {
            file: self.file.clone(),
            column: column.into(),
            available: self.names().join(", "),
        }
    }

    fn column(&self, name: &str) -> Result<&polars::prelude::Column, DataError> {
        self.df.column(name).map_err(|_| self.missing_column(name))
    }

    fn unsupported(&self, column: &str, dtype: &DataType, expected: &str) -> DataError {
        DataError::UnsupportedColumnType {
            file: self.file.clone(),
            column: column.into(),
            dtype: dtype.to_string(),
            expected: expected.into(),
        }
    }

    /// The dates of `column`: text parsed with `format` (detected when `None`), or a
    /// Parquet date / datetime column (the time of day dropped).
    pub(crate) fn dates(&self, column: &str, format: Option<&str>) -> Result<Vec<Date>, DataError> {
        let col = self.column(column)?;
        let missing = |row| DataError::MissingValue {
            file: self.file.clone(),
            column: column.into(),
            row,
        };
        match col.dtype() {
            DataType::String => {
                let ca = col.str().map_err(|e| self.internal(column, e))?;
                if let Some(row) = ca.iter().position(|v| v.is_none()) {
                    return Err(missing(row));
                }
                let format = match format {
                    Some(f) => {
                        check_date_format(f)?;
                        f
                    }
                    None => self.detect_format(column, ca)?,
                };
                ca.iter()
                    .enumerate()
                    .map(|(row, text)| {
                        let text = text.unwrap_or_default();
                        parse_date_with(text, format)
                            .map(Date::from_days_since_epoch)
                            .map_err(|reason| DataError::BadDate {
                                file: self.file.clone(),
                                column: column.into(),
                                row,
                                value: text.into(),
                                reason,
                            })
                    })
                    .collect()
            }
            DataType::Date => {
                let ca = col.date().map_err(|e| self.internal(column, e))?;
                ca.physical()
                    .iter()
                    .enumerate()
                    .map(|(row, d)| {
                        d.map(Date::from_days_since_epoch)
                            .ok_or_else(|| missing(row))
                    })
                    .collect()
            }
            DataType::Datetime(unit, _) => {
                let per_day: i64 = 86_400
                    * match unit {
                        TimeUnit::Nanoseconds => 1_000_000_000,
                        TimeUnit::Microseconds => 1_000_000,
                        TimeUnit::Milliseconds => 1_000,
                    };
                let ca = col.datetime().map_err(|e| self.internal(column, e))?;
                ca.physical()
                    .iter()
                    .enumerate()
                    .map(|(row, t)| {
                        let t = t.ok_or_else(|| missing(row))?;
                        i32::try_from(t.div_euclid(per_day))
                            .map(Date::from_days_since_epoch)
                            .map_err(|_| DataError::BadDate {
                                file: self.file.clone(),
                                column: column.into(),
                                row,
                                value: t.to_string(),
                                reason: "out of the range of dates".into(),
                            })
                    })
                    .collect()
            }
            other => Err(self.unsupported(column, other, "dates")),
        }
    }

    fn detect_format(
        &self,
        column: &str,
        ca: &polars::prelude::StringChunked,
    ) -> Result<&'static str, DataError> {
        let values =
            || Box::new(ca.iter().map(|v| v.unwrap_or_default())) as Box<dyn Iterator<Item = &str>>;
        detect_date_format(values).map_err(|e| match e {
            DetectError::Ambiguous(formats) => DataError::AmbiguousDateFormat {
                file: self.file.clone(),
                column: column.into(),
                formats: formats.join(", "),
            },
            DetectError::NoFormat(failure) => {
                let (row, format) = failure.unwrap_or((0, crate::date::DATE_FORMATS[0]));
                let value = ca.get(row).unwrap_or_default();
                DataError::BadDate {
                    file: self.file.clone(),
                    column: column.into(),
                    row,
                    value: value.into(),
                    reason: format!(
                        "no known date format reads every date (closest: `{format}`); \
                         pass LoadOptions::date_format"
                    ),
                }
            }
        })
    }

    /// The numbers of `column`; a missing or non-numeric cell is an error naming its row.
    /// Ranges (finite, positive) are checked by the caller.
    pub(crate) fn numbers(&self, column: &str) -> Result<Vec<f64>, DataError> {
        let col = self.column(column)?;
        let missing = |row| DataError::MissingValue {
            file: self.file.clone(),
            column: column.into(),
            row,
        };
        let dtype = col.dtype();
        if *dtype == DataType::String {
            let ca = col.str().map_err(|e| self.internal(column, e))?;
            ca.iter()
                .enumerate()
                .map(|(row, cell)| {
                    let text = cell.ok_or_else(|| missing(row))?.trim();
                    if text.is_empty() || MISSING.contains(&text) {
                        return Err(missing(row));
                    }
                    text.parse::<f64>().map_err(|_| DataError::InvalidNumber {
                        file: self.file.clone(),
                        column: column.into(),
                        row,
                        value: text.into(),
                    })
                })
                .collect()
        } else if dtype.is_primitive_numeric() {
            let cast = col
                .cast(&DataType::Float64)
                .map_err(|e| self.internal(column, e))?;
            let ca = cast.f64().map_err(|e| self.internal(column, e))?;
            ca.iter()
                .enumerate()
                .map(|(row, v)| v.ok_or_else(|| missing(row)))
                .collect()
        } else {
            Err(self.unsupported(column, dtype, "numbers"))
        }
    }

    /// A polars error on a column whose type was just checked: reported, not a panic.
    fn internal(&self, column: &str, error: impl std::fmt::Display) -> DataError {
        DataError::Malformed {
            file: self.file.clone(),
            format: format!("table (column `{column}`)"),
            reason: error.to_string(),
        }
    }
}

fn malformed(file: &str, format: &str, reason: impl std::fmt::Display) -> DataError {
    DataError::Malformed {
        file: file.into(),
        format: format.into(),
        reason: reason.to_string(),
    }
}

fn gunzip(bytes: &[u8], file: &str) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| malformed(file, "gzip'd CSV", e))?;
    Ok(out)
}

fn read_csv(text: &[u8], file: &str, separator: u8) -> Result<DataFrame, DataError> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    check_rectangular(text, file, separator)?;
    CsvReadOptions::default()
        .with_has_header(true)
        // Every column as text: cells are parsed (and bad ones reported) by `Table`.
        .with_infer_schema_length(Some(0))
        .with_parse_options(
            CsvParseOptions::default()
                .with_separator(separator)
                .with_missing_is_null(true),
        )
        .into_reader_with_file_handle(Cursor::new(text))
        .finish()
        .map_err(|e| malformed(file, "CSV", e))
}

/// Check that every row has as many fields as the header (fields in double quotes may hold
/// separators and line breaks). Blank lines at the end are ignored; elsewhere they are
/// ragged rows with 0 fields.
fn check_rectangular(text: &[u8], file: &str, separator: u8) -> Result<(), DataError> {
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DataError::EmptyData {
            file: file.into(),
            reason: "the file is empty (no header)".into(),
        });
    }
    let mut scan = RowScan {
        file,
        expected: None,
        rows_done: 0,
        pending_blank: None,
    };
    let mut line = 1; // line number of the current row's first line
    let mut next_line = 1;
    let mut fields = 1;
    let mut blank = true; // nothing but '\r' on the row so far
    let mut in_quotes = false;
    for &b in text {
        if b == b'\n' {
            next_line += 1;
        }
        if in_quotes {
            in_quotes = b != b'"';
            continue;
        }
        match b {
            b'"' => {
                in_quotes = true;
                blank = false;
            }
            b'\n' => {
                scan.finish_row(fields, blank, line)?;
                line = next_line;
                fields = 1;
                blank = true;
            }
            b'\r' => {}
            _ => {
                if b == separator {
                    fields += 1;
                }
                blank = false;
            }
        }
    }
    // The last line, when the file does not end with a line break; trailing blank lines are
    // fine.
    if !blank {
        scan.finish_row(fields, blank, line)?;
    }
    Ok(())
}

/// State of [`check_rectangular`]: the header's field count and a blank line not yet known
/// to be trailing.
struct RowScan<'a> {
    file: &'a str,
    expected: Option<usize>,
    /// Rows finished, the header included.
    rows_done: usize,
    pending_blank: Option<(usize, usize)>,
}

impl RowScan<'_> {
    fn finish_row(&mut self, fields: usize, blank: bool, line: usize) -> Result<(), DataError> {
        if blank {
            self.pending_blank.get_or_insert((line, self.rows_done));
            return Ok(());
        }
        if let Some((blank_line, rows_before)) = self.pending_blank.take() {
            return Err(self.ragged(blank_line, rows_before, 0));
        }
        match self.expected {
            None => self.expected = Some(fields),
            Some(n) if n != fields => return Err(self.ragged(line, self.rows_done, fields)),
            Some(_) => {}
        }
        self.rows_done += 1;
        Ok(())
    }

    fn ragged(&self, line: usize, rows_before: usize, fields: usize) -> DataError {
        DataError::RaggedRow {
            file: self.file.into(),
            line,
            // Data rows are counted after the header.
            row: rows_before.saturating_sub(1),
            fields,
            expected: self.expected.unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ragged(text: &str) -> Option<(usize, usize, usize, usize)> {
        match check_rectangular(text.as_bytes(), "t.csv", b',') {
            Ok(()) => None,
            Err(DataError::RaggedRow {
                line,
                row,
                fields,
                expected,
                ..
            }) => Some((line, row, fields, expected)),
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn the_scan_finds_ragged_rows() {
        assert_eq!(ragged("a,b\r\n1,2\r\n3,4\r\n"), None);
        assert_eq!(ragged("a,b\n1,2\n3,4"), None);
        assert_eq!(ragged("a,b\n1,2\n\n\n"), None, "trailing blank lines");
        assert_eq!(
            ragged("a,b\n\"x,\ny\",2\n3,4\n"),
            None,
            "quoted separator and newline"
        );
        assert_eq!(ragged("a,b\n1,2\n3\n"), Some((3, 1, 1, 2)));
        assert_eq!(ragged("a,b\n1,2,5\n3,4\n"), Some((2, 0, 3, 2)));
        assert_eq!(
            ragged("a,b\n1,2\n\n3,4\n"),
            Some((3, 1, 0, 2)),
            "blank line inside"
        );
        assert_eq!(ragged("a,b\n\"x\ny\",2\n3,4,5"), Some((4, 1, 3, 2)));
    }
}
