//! Loading daily price files: single-asset OHLCV bars and wide multi-asset close panels.
//!
//! Files are CSV, gzip'd CSV or Parquet, the format chosen from the file name (`.csv`,
//! `.csv.gz`, `.parquet`) or given in [`LoadOptions::format`]. The date column is found by
//! name (`Date`, `Datetime`, `Timestamp`, `Time`, `Day`, any case) or is the first column, and
//! its format is detected (see [`crate::date`]) unless given. What comes out is plain data:
//! `Vec<Date>`, `Vec<f64>` and `ndarray::Array2<f64>`.
//!
//! Everything is validated on the way in, and refused with a [`DataError`] that names the
//! file, the column, the row (0-based data row, the header not counted: line `row + 2` of a
//! plain CSV file) and the value: a missing file or column, no data, unparseable or
//! non-increasing dates (duplicates included), missing cells, text where a number belongs,
//! NaN, infinite, zero or negative prices, a negative volume, a high below the low, rows with
//! the wrong number of fields.
//!
//! ```
//! use quantrl_data::load::{LoadOptions, load_panel_from_bytes};
//! let csv = b"Date,AAA,BBB\n2024-01-02,10.0,20.0\n2024-01-03,10.5,19.5\n";
//! let panel = load_panel_from_bytes(csv, "prices.csv", &LoadOptions::default())?;
//! assert_eq!(panel.tickers, ["AAA", "BBB"]);
//! assert_eq!(panel.close[[1, 0]], 10.5);
//! assert_eq!(panel.dates[0].to_string(), "2024-01-02");
//!
//! let bad = b"Date,AAA\n2024-01-02,10.0\n2024-01-02,-1.0\n";
//! let err = load_panel_from_bytes(bad, "bad.csv", &LoadOptions::default()).unwrap_err();
//! assert!(err.to_string().contains("row 1"));
//! # Ok::<(), quantrl_data::DataError>(())
//! ```

use std::path::Path;

use ndarray::{Array2, ArrayView1, Axis};

use crate::table::Table;
use crate::{DataError, Date};

/// The file formats the loaders read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Comma-separated text with a header row (gzip'd bytes are recognized and decompressed).
    Csv,
    /// gzip'd CSV (`.csv.gz`).
    CsvGz,
    /// Apache Parquet.
    Parquet,
}

impl FileFormat {
    /// The format a file name implies: `.csv`, `.csv.gz` (or `.csv.gzip`), `.parquet` (or
    /// `.pq`), any case; `None` for anything else.
    ///
    /// ```
    /// use quantrl_data::FileFormat;
    /// assert_eq!(FileFormat::from_name("sp500.CSV.gz"), Some(FileFormat::CsvGz));
    /// assert_eq!(FileFormat::from_name("bars.xlsx"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        if name.ends_with(".csv.gz") || name.ends_with(".csv.gzip") {
            Some(Self::CsvGz)
        } else if name.ends_with(".csv") {
            Some(Self::Csv)
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            Some(Self::Parquet)
        } else {
            None
        }
    }
}

/// How to read a price file. The default reads a comma-separated file whose format is
/// implied by its name, finds the date column and detects its format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// The format; `None`: from the file name ([`FileFormat::from_name`]).
    pub format: Option<FileFormat>,
    /// The date column; `None`: the first column named `Date`, `Datetime`, `Timestamp`,
    /// `Time` or `Day` (any case), else the first column.
    pub date_column: Option<String>,
    /// The date format of a text date column (`%Y-%m-%d`, `%d/%m/%Y`, ... see
    /// [`crate::date`]); `None`: detected from [`crate::date::DATE_FORMATS`].
    pub date_format: Option<String>,
    /// Panels: the columns (tickers) to load, in this order; `None`: every column but the
    /// date.
    pub columns: Option<Vec<String>>,
    /// OHLCV: the column read as the close (for example `Adj Close`); `None`: `Close`.
    pub close_column: Option<String>,
    /// CSV field separator; `None`: `,`.
    pub separator: Option<u8>,
}

/// Daily bars of one asset, oldest first, dates strictly increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct Ohlcv {
    /// One date per bar.
    pub dates: Vec<Date>,
    /// Opening prices (> 0).
    pub open: Vec<f64>,
    /// Highs (> 0, >= low).
    pub high: Vec<f64>,
    /// Lows (> 0).
    pub low: Vec<f64>,
    /// Closes (> 0).
    pub close: Vec<f64>,
    /// Traded volume (>= 0), where the file has a `Volume` column.
    pub volume: Option<Vec<f64>>,
}

impl Ohlcv {
    /// Number of bars.
    pub fn len(&self) -> usize {
        self.dates.len()
    }

    /// `true` when there are no bars.
    pub fn is_empty(&self) -> bool {
        self.dates.is_empty()
    }

    /// The bars dated in `[start, end)`.
    pub fn slice_dates(&self, start: Date, end: Date) -> Ohlcv {
        let r = date_range(&self.dates, start, end);
        Ohlcv {
            dates: self.dates[r.clone()].to_vec(),
            open: self.open[r.clone()].to_vec(),
            high: self.high[r.clone()].to_vec(),
            low: self.low[r.clone()].to_vec(),
            close: self.close[r.clone()].to_vec(),
            volume: self.volume.as_ref().map(|v| v[r].to_vec()),
        }
    }

    /// The closes as a one-asset panel named `ticker`.
    pub fn to_panel(&self, ticker: &str) -> PricePanel {
        PricePanel {
            dates: self.dates.clone(),
            tickers: vec![ticker.to_string()],
            close: Array2::from_shape_fn((self.close.len(), 1), |(t, _)| self.close[t]),
        }
    }
}

/// Close prices of several assets on common dates: `close[[t, j]]` is asset `tickers[j]` on
/// `dates[t]`. Dates strictly increase; every price is finite and positive.
#[derive(Debug, Clone, PartialEq)]
pub struct PricePanel {
    /// One date per row.
    pub dates: Vec<Date>,
    /// One name per column.
    pub tickers: Vec<String>,
    /// `T x N` close prices (standard row-major layout).
    pub close: Array2<f64>,
}

impl PricePanel {
    /// Number of dates (rows).
    pub fn n_dates(&self) -> usize {
        self.dates.len()
    }

    /// Number of assets (columns).
    pub fn n_assets(&self) -> usize {
        self.tickers.len()
    }

    /// The column of `ticker`, if the panel has it.
    pub fn ticker_index(&self, ticker: &str) -> Option<usize> {
        self.tickers.iter().position(|t| t == ticker)
    }

    /// The closes of `ticker`; an error naming the tickers there are if it is absent.
    pub fn column(&self, ticker: &str) -> Result<ArrayView1<'_, f64>, DataError> {
        match self.ticker_index(ticker) {
            Some(j) => Ok(self.close.column(j)),
            None => Err(DataError::MissingColumn {
                file: "price panel".into(),
                column: ticker.into(),
                available: self.tickers.join(", "),
            }),
        }
    }

    /// The rows dated in `[start, end)`.
    pub fn slice_dates(&self, start: Date, end: Date) -> PricePanel {
        let r = date_range(&self.dates, start, end);
        PricePanel {
            dates: self.dates[r.clone()].to_vec(),
            tickers: self.tickers.clone(),
            close: self.close.slice(ndarray::s![r, ..]).to_owned(),
        }
    }

    /// Both panels restricted to the dates they have in common (for example a stock panel
    /// and an index loaded from another file). An error if they share no date.
    pub fn align(&self, other: &PricePanel) -> Result<(PricePanel, PricePanel), DataError> {
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < self.dates.len() && j < other.dates.len() {
            match self.dates[i].cmp(&other.dates[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    mine.push(i);
                    theirs.push(j);
                    i += 1;
                    j += 1;
                }
            }
        }
        if mine.is_empty() {
            return Err(DataError::EmptyData {
                file: "aligned panels".into(),
                reason: format!(
                    "no common dates ({} and {})",
                    fmt_span(&self.dates),
                    fmt_span(&other.dates)
                ),
            });
        }
        Ok((self.select_rows(&mine), other.select_rows(&theirs)))
    }

    fn select_rows(&self, rows: &[usize]) -> PricePanel {
        PricePanel {
            dates: rows.iter().map(|&t| self.dates[t]).collect(),
            tickers: self.tickers.clone(),
            close: self.close.select(Axis(0), rows),
        }
    }

    /// The closes as a row-major `Vec` (`T * N` values, row `t` is `close[t * N..(t + 1) * N]`).
    pub fn to_row_major(&self) -> Vec<f64> {
        self.close.iter().copied().collect()
    }
}

fn fmt_span(dates: &[Date]) -> String {
    match (dates.first(), dates.last()) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        _ => "no dates".into(),
    }
}

/// Indices of the sorted `dates` in `[start, end)`.
fn date_range(dates: &[Date], start: Date, end: Date) -> std::ops::Range<usize> {
    let a = dates.partition_point(|d| *d < start);
    let b = dates.partition_point(|d| *d < end).max(a);
    a..b
}

/// Load daily OHLCV bars (columns `Open`, `High`, `Low`, `Close` and optionally `Volume`,
/// any case; other columns such as `Adj Close` are ignored unless named in
/// [`LoadOptions::close_column`]).
pub fn load_ohlcv(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Ohlcv, DataError> {
    let (bytes, name) = read_file(path.as_ref())?;
    load_ohlcv_from_bytes(&bytes, &name, options)
}

/// Load a wide close panel: a date column and one price column per asset.
pub fn load_panel(path: impl AsRef<Path>, options: &LoadOptions) -> Result<PricePanel, DataError> {
    let (bytes, name) = read_file(path.as_ref())?;
    load_panel_from_bytes(&bytes, &name, options)
}

/// [`load_ohlcv`] on bytes in memory; `name` is used in errors and, without
/// [`LoadOptions::format`], to choose the format.
pub fn load_ohlcv_from_bytes(
    bytes: &[u8],
    name: &str,
    options: &LoadOptions,
) -> Result<Ohlcv, DataError> {
    let table = read_table(bytes, name, options)?;
    let names = table.names();
    let find = |wanted: &str| -> Result<String, DataError> {
        names
            .iter()
            .find(|n| n.trim().eq_ignore_ascii_case(wanted))
            .cloned()
            .ok_or_else(|| table.missing_column(wanted))
    };
    let close_name = match &options.close_column {
        Some(c) => names
            .iter()
            .find(|n| *n == c)
            .cloned()
            .ok_or_else(|| table.missing_column(c))?,
        None => find("close")?,
    };
    let dates = read_dates(&table, name, options)?;
    let prices = |column: &str| -> Result<Vec<f64>, DataError> {
        let values = table.numbers(column)?;
        check_column(name, column, &values, Allowed::Positive)?;
        Ok(values)
    };
    let (open_name, high_name, low_name) = (find("open")?, find("high")?, find("low")?);
    let open = prices(&open_name)?;
    let high = prices(&high_name)?;
    let low = prices(&low_name)?;
    let close = prices(&close_name)?;
    if let Some(row) = (0..high.len()).find(|&t| high[t] < low[t]) {
        return Err(DataError::InvalidValue {
            file: name.into(),
            column: high_name,
            row,
            value: high[row],
            allowed: format!(">= the low ({})", low[row]),
        });
    }
    let volume = match find("volume") {
        Ok(column) => {
            let values = table.numbers(&column)?;
            check_column(name, &column, &values, Allowed::NonNegative)?;
            Some(values)
        }
        Err(_) => None,
    };
    Ok(Ohlcv {
        dates,
        open,
        high,
        low,
        close,
        volume,
    })
}

/// [`load_panel`] on bytes in memory; `name` is used in errors and, without
/// [`LoadOptions::format`], to choose the format.
pub fn load_panel_from_bytes(
    bytes: &[u8],
    name: &str,
    options: &LoadOptions,
) -> Result<PricePanel, DataError> {
    let table = read_table(bytes, name, options)?;
    let date_column = date_column(&table, options)?;
    let tickers: Vec<String> = match &options.columns {
        Some(columns) => columns.clone(),
        None => table
            .names()
            .into_iter()
            .filter(|n| *n != date_column)
            .collect(),
    };
    if tickers.is_empty() {
        return Err(DataError::EmptyData {
            file: name.into(),
            reason: format!("no price columns besides the date column `{date_column}`"),
        });
    }
    let dates = read_dates(&table, name, options)?;
    let (n_rows, n_assets) = (table.height(), tickers.len());
    let mut close = Array2::zeros((n_rows, n_assets));
    for (j, ticker) in tickers.iter().enumerate() {
        let values = table.numbers(ticker)?;
        check_column(name, ticker, &values, Allowed::Positive)?;
        close
            .column_mut(j)
            .iter_mut()
            .zip(values)
            .for_each(|(c, v)| *c = v);
    }
    Ok(PricePanel {
        dates,
        tickers,
        close,
    })
}

fn read_file(path: &Path) -> Result<(Vec<u8>, String), DataError> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => Ok((bytes, name)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(DataError::FileNotFound { file: name })
        }
        Err(e) => Err(DataError::Io {
            file: name,
            message: e.to_string(),
        }),
    }
}

fn read_table(bytes: &[u8], name: &str, options: &LoadOptions) -> Result<Table, DataError> {
    let format = match options.format {
        Some(f) => f,
        None => FileFormat::from_name(name)
            .ok_or_else(|| DataError::UnknownFormat { file: name.into() })?,
    };
    Table::read(bytes, name, format, options.separator.unwrap_or(b','))
}

const DATE_NAMES: [&str; 5] = ["date", "datetime", "timestamp", "time", "day"];

fn date_column(table: &Table, options: &LoadOptions) -> Result<String, DataError> {
    let names = table.names();
    if let Some(wanted) = &options.date_column {
        return names
            .iter()
            .find(|n| *n == wanted)
            .cloned()
            .ok_or_else(|| table.missing_column(wanted));
    }
    Ok(DATE_NAMES
        .iter()
        .find_map(|d| names.iter().find(|n| n.trim().eq_ignore_ascii_case(d)))
        .unwrap_or(&names[0])
        .clone())
}

/// The dates of the table, checked to strictly increase.
fn read_dates(table: &Table, file: &str, options: &LoadOptions) -> Result<Vec<Date>, DataError> {
    let column = date_column(table, options)?;
    let dates = table.dates(&column, options.date_format.as_deref())?;
    if let Some(i) = dates.windows(2).position(|w| w[1] <= w[0]) {
        return Err(DataError::NonIncreasingDate {
            file: file.into(),
            column,
            row: i + 1,
            value: dates[i + 1].to_string(),
            previous: dates[i].to_string(),
        });
    }
    Ok(dates)
}

#[derive(Clone, Copy)]
enum Allowed {
    Positive,
    NonNegative,
}

fn check_column(
    file: &str,
    column: &str,
    values: &[f64],
    allowed: Allowed,
) -> Result<(), DataError> {
    let ok = |v: f64| match allowed {
        Allowed::Positive => v.is_finite() && v > 0.0,
        Allowed::NonNegative => v.is_finite() && v >= 0.0,
    };
    match values.iter().position(|&v| !ok(v)) {
        None => Ok(()),
        Some(row) => Err(DataError::InvalidValue {
            file: file.into(),
            column: column.into(),
            row,
            value: values[row],
            allowed: match allowed {
                Allowed::Positive => "a finite price > 0",
                Allowed::NonNegative => "finite and >= 0",
            }
            .into(),
        }),
    }
}
