//! Loading price files: every validation error path with a bad file written to a temporary
//! folder, the formats (CSV, gzip'd CSV, Parquet), and the embedded data sets.

use std::io::Write;
use std::path::PathBuf;

use polars::prelude::{
    DataFrame, DataType, IntoColumn, NamedFrom, ParquetWriter, Series, TimeUnit,
};
use quantrl_data::{
    DataError, Date, FileFormat, LoadOptions, embedded, load_ohlcv, load_ohlcv_from_bytes,
    load_panel, load_panel_from_bytes,
};

/// A fresh folder for one test.
fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quantrl-data-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Write `contents` to `name` in the test's folder.
fn file(test: &str, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir(test).join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn panel_err(test: &str, name: &str, contents: &str) -> DataError {
    let path = file(test, name, contents.as_bytes());
    let err = load_panel(&path, &LoadOptions::default()).unwrap_err();
    // Every message names the file.
    assert!(
        err.to_string().contains(name),
        "`{err}` does not name the file {name}"
    );
    err
}

fn ohlcv_err(test: &str, name: &str, contents: &str) -> DataError {
    let path = file(test, name, contents.as_bytes());
    let err = load_ohlcv(&path, &LoadOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains(name),
        "`{err}` does not name the file {name}"
    );
    err
}

const BARS: &str = "Date,Open,High,Low,Close,Adj Close,Volume\n\
                    2020-01-02,10,11,9,10.5,10.5,1000\n\
                    2020-01-03,10.5,12,10,11.5,11.5,2000\n\
                    2020-01-06,11.5,12,11,11.0,11.0,1500\n";

#[test]
fn a_good_ohlcv_file_loads() {
    let path = file("good_ohlcv", "bars.csv", BARS.as_bytes());
    let bars = load_ohlcv(&path, &LoadOptions::default()).unwrap();
    assert_eq!(bars.len(), 3);
    assert_eq!(bars.dates[2], "2020-01-06".parse().unwrap());
    assert_eq!(bars.close, [10.5, 11.5, 11.0]);
    assert_eq!(bars.high, [11.0, 12.0, 12.0]);
    assert_eq!(bars.volume, Some(vec![1000.0, 2000.0, 1500.0]));

    let no_volume = "date,open,high,low,close\n2020-01-02,1,2,1,1.5\n";
    let bars =
        load_ohlcv_from_bytes(no_volume.as_bytes(), "x.csv", &LoadOptions::default()).unwrap();
    assert_eq!(bars.volume, None);

    let adj = LoadOptions {
        close_column: Some("Adj Close".into()),
        ..Default::default()
    };
    let with_adj = BARS.replace(",10.5,1000", ",10.25,1000");
    let bars = load_ohlcv_from_bytes(with_adj.as_bytes(), "bars.csv", &adj).unwrap();
    assert_eq!(bars.close[0], 10.25);
}

#[test]
fn csv_variants_load() {
    // CRLF, a byte-order mark, quoted fields, a semicolon separator, day-first dates.
    let text = "\u{feff}\"Day\";\"A;1\";B\r\n22.05.2009;1,5;2\r\n25.05.2009;\"1.6\";2.1\r\n";
    let options = LoadOptions {
        separator: Some(b';'),
        ..Default::default()
    };
    let err = load_panel_from_bytes(text.as_bytes(), "eu.csv", &options).unwrap_err();
    assert!(
        matches!(&err, DataError::InvalidNumber { column, row: 0, value, .. } if column == "A;1" && value == "1,5"),
        "{err}"
    );
    let text = text.replace("1,5", "1.5");
    let panel = load_panel_from_bytes(text.as_bytes(), "eu.csv", &options).unwrap();
    assert_eq!(panel.tickers, ["A;1", "B"]);
    assert_eq!(panel.dates[0].to_string(), "2009-05-22");
    assert_eq!(panel.close[[1, 0]], 1.6);

    // An explicit date format and date column; a column selection in the order given.
    let text = "id,when,X,Y\n1,2020/01/02,1,2\n2,2020/01/03,3,4\n";
    let options = LoadOptions {
        date_column: Some("when".into()),
        date_format: Some("%Y/%m/%d".into()),
        columns: Some(vec!["Y".into(), "X".into()]),
        ..Default::default()
    };
    let panel = load_panel_from_bytes(text.as_bytes(), "p.csv", &options).unwrap();
    assert_eq!(panel.tickers, ["Y", "X"]);
    assert_eq!(panel.close.row(1).to_vec(), [4.0, 3.0]);
}

#[test]
fn gzip_csv_loads_by_extension_or_override() {
    let bytes = gzip(BARS.as_bytes());
    let path = file("gzip", "bars.csv.gz", &bytes);
    let from_file = load_ohlcv(&path, &LoadOptions::default()).unwrap();
    let plain =
        load_ohlcv_from_bytes(BARS.as_bytes(), "bars.csv", &LoadOptions::default()).unwrap();
    assert_eq!(from_file, plain);
    // Format override on a name without extension.
    let options = LoadOptions {
        format: Some(FileFormat::CsvGz),
        ..Default::default()
    };
    assert_eq!(
        load_ohlcv_from_bytes(&bytes, "blob", &options).unwrap(),
        plain
    );
}

fn parquet_bytes(columns: Vec<Series>) -> Vec<u8> {
    let mut df =
        DataFrame::new_infer_height(columns.into_iter().map(|s| s.into_column()).collect())
            .unwrap();
    let mut out = Vec::new();
    ParquetWriter::new(&mut out).finish(&mut df).unwrap();
    out
}

#[test]
fn parquet_loads_with_date_datetime_or_text_dates() {
    let days: Vec<i32> = ["2020-01-02", "2020-01-03", "2020-01-06"]
        .iter()
        .map(|d| d.parse::<Date>().unwrap().days_since_epoch())
        .collect();
    let closes = Series::new("AAA".into(), [1.0f64, 1.1, 1.2]);
    let ints = Series::new("BBB".into(), [5i64, 6, 7]);
    let expected = load_panel_from_bytes(
        b"Date,AAA,BBB\n2020-01-02,1.0,5\n2020-01-03,1.1,6\n2020-01-06,1.2,7\n",
        "p.csv",
        &LoadOptions::default(),
    )
    .unwrap();

    let date = Series::new("Date".into(), days.clone())
        .cast(&DataType::Date)
        .unwrap();
    let bytes = parquet_bytes(vec![date, closes.clone(), ints.clone()]);
    let path = file("parquet", "p.parquet", &bytes);
    assert_eq!(
        load_panel(&path, &LoadOptions::default()).unwrap(),
        expected
    );

    // Datetime at 16:00 on each day (milliseconds): the day is kept.
    let ms: Vec<i64> = days
        .iter()
        .map(|&d| i64::from(d) * 86_400_000 + 16 * 3_600_000)
        .collect();
    let datetime = Series::new("timestamp".into(), ms)
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    let bytes = parquet_bytes(vec![datetime, closes.clone(), ints.clone()]);
    assert_eq!(
        load_panel_from_bytes(&bytes, "p.parquet", &LoadOptions::default()).unwrap(),
        expected
    );

    let text = Series::new("Date".into(), ["2020-01-02", "2020-01-03", "2020-01-06"]);
    let bytes = parquet_bytes(vec![text, closes, ints]);
    let options = LoadOptions {
        format: Some(FileFormat::Parquet),
        ..Default::default()
    };
    assert_eq!(
        load_panel_from_bytes(&bytes, "blob", &options).unwrap(),
        expected
    );
}

#[test]
fn parquet_refuses_unreadable_column_types_and_nulls() {
    let date = Series::new("Date".into(), ["2020-01-02", "2020-01-03"]);
    let flags = Series::new("AAA".into(), [true, false]);
    let bytes = parquet_bytes(vec![date.clone(), flags]);
    let err = load_panel_from_bytes(&bytes, "flags.parquet", &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DataError::UnsupportedColumnType { file, column, expected, .. }
            if file == "flags.parquet" && column == "AAA" && expected == "numbers"),
        "{err}"
    );

    let float_dates = Series::new("Date".into(), [1.0f64, 2.0]);
    let prices = Series::new("AAA".into(), [1.0f64, 2.0]);
    let bytes = parquet_bytes(vec![float_dates, prices]);
    let err = load_panel_from_bytes(&bytes, "d.parquet", &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DataError::UnsupportedColumnType { column, expected, .. } if column == "Date" && expected == "dates"),
        "{err}"
    );

    let with_null = Series::new("AAA".into(), [Some(1.0f64), None]);
    let bytes = parquet_bytes(vec![date, with_null]);
    let err = load_panel_from_bytes(&bytes, "n.parquet", &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DataError::MissingValue { column, row: 1, .. } if column == "AAA"),
        "{err}"
    );
}

#[test]
fn missing_file_and_unreadable_path() {
    let missing = dir("missing").join("nowhere.csv");
    let err = load_panel(&missing, &LoadOptions::default()).unwrap_err();
    assert!(matches!(&err, DataError::FileNotFound { file } if file.ends_with("nowhere.csv")));
    assert!(err.to_string().contains("nowhere.csv"));

    // A folder named like a CSV file exists but cannot be read as one.
    let folder = dir("unreadable").join("folder.csv");
    std::fs::create_dir_all(&folder).unwrap();
    let err = load_ohlcv(&folder, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DataError::Io { file, .. } if file.ends_with("folder.csv")),
        "{err}"
    );
}

#[test]
fn unknown_extension() {
    let err = panel_err("unknown_ext", "prices.xlsx", "Date,A\n2020-01-02,1\n");
    assert!(matches!(err, DataError::UnknownFormat { .. }), "{err}");
}

#[test]
fn malformed_gzip_and_parquet() {
    let mut broken = gzip(BARS.as_bytes());
    broken.truncate(broken.len() / 2);
    let path = file("bad_gzip", "bars.csv.gz", &broken);
    let err = load_ohlcv(&path, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DataError::Malformed { format, .. } if format == "gzip'd CSV"),
        "{err}"
    );

    // Named .csv.gz but plain text.
    let err = panel_err("not_gzip", "plain.csv.gz", "Date,A\n2020-01-02,1\n");
    assert!(
        matches!(&err, DataError::Malformed { reason, .. } if reason.contains("gzip")),
        "{err}"
    );

    let err = panel_err("bad_parquet", "junk.parquet", "this is not parquet at all");
    assert!(
        matches!(&err, DataError::Malformed { format, .. } if format == "Parquet"),
        "{err}"
    );
}

#[test]
fn ragged_rows() {
    let err = panel_err(
        "ragged_long",
        "long.csv",
        "Date,A,B\n2020-01-02,1,2\n2020-01-03,1,2,3\n",
    );
    assert!(
        matches!(
            err,
            DataError::RaggedRow {
                line: 3,
                row: 1,
                fields: 3,
                expected: 3,
                ..
            }
        ) || matches!(
            err,
            DataError::RaggedRow {
                line: 3,
                row: 1,
                fields: 4,
                expected: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = panel_err(
        "ragged_short",
        "short.csv",
        "Date,A,B\n2020-01-02,1,2\n2020-01-03,1\n2020-01-06,1,2\n",
    );
    assert!(
        matches!(
            err,
            DataError::RaggedRow {
                line: 3,
                row: 1,
                fields: 2,
                expected: 3,
                ..
            }
        ),
        "{err}"
    );
    // Gzip'd input is scanned after decompression.
    let bytes = gzip(b"Date,A\n2020-01-02,1\n2020-01-03,1,9\n");
    let err = load_panel_from_bytes(&bytes, "r.csv.gz", &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::RaggedRow {
                row: 1,
                fields: 3,
                expected: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn missing_columns() {
    let err = ohlcv_err(
        "no_high",
        "nohigh.csv",
        "Date,Open,Low,Close\n2020-01-02,1,1,1\n",
    );
    assert!(
        matches!(&err, DataError::MissingColumn { column, available, .. }
            if column == "high" && available == "Date, Open, Low, Close"),
        "{err}"
    );

    let path = file("no_date_col", "p.csv", b"Date,A\n2020-01-02,1\n");
    let options = LoadOptions {
        date_column: Some("When".into()),
        ..Default::default()
    };
    let err = load_panel(&path, &options).unwrap_err();
    assert!(
        matches!(&err, DataError::MissingColumn { column, .. } if column == "When"),
        "{err}"
    );

    let options = LoadOptions {
        columns: Some(vec!["A".into(), "ZZZ".into()]),
        ..Default::default()
    };
    let err = load_panel(&path, &options).unwrap_err();
    assert!(
        matches!(&err, DataError::MissingColumn { column, .. } if column == "ZZZ"),
        "{err}"
    );

    let options = LoadOptions {
        close_column: Some("Adj Close".into()),
        ..Default::default()
    };
    let path = file(
        "no_adj",
        "bars.csv",
        b"Date,Open,High,Low,Close\n2020-01-02,1,1,1,1\n",
    );
    let err = load_ohlcv(&path, &options).unwrap_err();
    assert!(
        matches!(&err, DataError::MissingColumn { column, .. } if column == "Adj Close"),
        "{err}"
    );
}

#[test]
fn empty_data() {
    let err = panel_err("empty_file", "empty.csv", "");
    assert!(matches!(err, DataError::EmptyData { .. }), "{err}");
    let err = panel_err("header_only", "header.csv", "Date,A,B\n");
    assert!(
        matches!(&err, DataError::EmptyData { reason, .. } if reason.contains("rows")),
        "{err}"
    );
    let err = panel_err("dates_only", "dates.csv", "Date\n2020-01-02\n");
    assert!(
        matches!(&err, DataError::EmptyData { reason, .. } if reason.contains("price columns")),
        "{err}"
    );
}

#[test]
fn unparseable_dates() {
    let err = panel_err("bad_date", "d.csv", "Date,A\n2020-01-02,1\n2020-13-01,1\n");
    assert!(
        matches!(&err, DataError::BadDate { column, row: 1, value, .. } if column == "Date" && value == "2020-13-01"),
        "{err}"
    );

    let path = file(
        "wrong_format",
        "d.csv",
        b"Date,A\n2020-01-02,1\n2020-01-03,1\n",
    );
    let options = LoadOptions {
        date_format: Some("%d/%m/%Y".into()),
        ..Default::default()
    };
    let err = load_panel(&path, &options).unwrap_err();
    assert!(
        matches!(&err, DataError::BadDate { row: 0, value, .. } if value == "2020-01-02"),
        "{err}"
    );

    let options = LoadOptions {
        date_format: Some("%Y-%b-%d".into()),
        ..Default::default()
    };
    let err = load_panel(&path, &options).unwrap_err();
    assert!(matches!(err, DataError::Config(_)), "{err}");

    let err = panel_err("missing_date", "md.csv", "Date,A\n2020-01-02,1\n,1\n");
    assert!(
        matches!(&err, DataError::MissingValue { column, row: 1, .. } if column == "Date"),
        "{err}"
    );
}

#[test]
fn ambiguous_date_format() {
    let err = panel_err(
        "ambiguous",
        "us.csv",
        "Date,A\n01/02/2020,1\n01/03/2020,1\n",
    );
    assert!(
        matches!(&err, DataError::AmbiguousDateFormat { formats, .. } if formats.contains("%m/%d/%Y") && formats.contains("%d/%m/%Y")),
        "{err}"
    );
    // The same file with the format given loads, and a day above 12 settles it alone.
    let path = file(
        "ambiguous_ok",
        "us.csv",
        b"Date,A\n01/02/2020,1\n01/03/2020,1\n",
    );
    let options = LoadOptions {
        date_format: Some("%m/%d/%Y".into()),
        ..Default::default()
    };
    assert_eq!(
        load_panel(&path, &options).unwrap().dates[1].to_string(),
        "2020-01-03"
    );
    let panel = load_panel_from_bytes(
        b"Date,A\n01/12/2020,1\n01/13/2020,1\n",
        "us.csv",
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(panel.dates[1].to_string(), "2020-01-13");
}

#[test]
fn duplicate_and_decreasing_dates() {
    let err = panel_err(
        "duplicate",
        "dup.csv",
        "Date,A\n2020-01-02,1\n2020-01-03,1\n2020-01-03,1\n",
    );
    assert!(
        matches!(&err, DataError::NonIncreasingDate { row: 2, value, previous, .. } if value == "2020-01-03" && previous == "2020-01-03"),
        "{err}"
    );
    let err = ohlcv_err(
        "backwards",
        "back.csv",
        &BARS.replace("2020-01-06", "2020-01-01"),
    );
    assert!(
        matches!(err, DataError::NonIncreasingDate { row: 2, .. }),
        "{err}"
    );
}

#[test]
fn missing_values_and_non_numbers() {
    let err = panel_err(
        "empty_cell",
        "e.csv",
        "Date,A,B\n2020-01-02,1,2\n2020-01-03,,2\n",
    );
    assert!(
        matches!(&err, DataError::MissingValue { column, row: 1, .. } if column == "A"),
        "{err}"
    );
    let err = panel_err("na_cell", "na.csv", "Date,A,B\n2020-01-02,1,NA\n");
    assert!(
        matches!(&err, DataError::MissingValue { column, row: 0, .. } if column == "B"),
        "{err}"
    );
    let err = panel_err(
        "text_cell",
        "t.csv",
        "Date,A,B\n2020-01-02,1,2\n2020-01-03,1,abc\n",
    );
    assert!(
        matches!(&err, DataError::InvalidNumber { column, row: 1, value, .. } if column == "B" && value == "abc"),
        "{err}"
    );
    assert!(err.to_string().contains("abc") && err.to_string().contains("row 1"));
}

#[test]
fn bad_prices_are_refused() {
    for (test, cell, shown) in [
        ("nan_price", "NaN", "NaN"),
        ("inf_price", "inf", "inf"),
        ("zero_price", "0", "0"),
        ("negative_price", "-3.5", "-3.5"),
    ] {
        let text = format!("Date,A,B\n2020-01-02,1,2\n2020-01-03,1,2\n2020-01-06,{cell},2\n");
        let err = panel_err(test, "p.csv", &text);
        assert!(
            matches!(&err, DataError::InvalidValue { column, row: 2, .. } if column == "A"),
            "{test}: {err}"
        );
        assert!(err.to_string().contains(shown), "{err}");
    }
    let err = ohlcv_err(
        "zero_open",
        "o.csv",
        &BARS.replace("2020-01-03,10.5,", "2020-01-03,0,"),
    );
    assert!(
        matches!(&err, DataError::InvalidValue { column, row: 1, .. } if column == "Open"),
        "{err}"
    );
    let err = ohlcv_err("negative_volume", "v.csv", &BARS.replace(",1500", ",-1"));
    assert!(
        matches!(&err, DataError::InvalidValue { column, row: 2, .. } if column == "Volume"),
        "{err}"
    );
    let err = ohlcv_err(
        "high_below_low",
        "hl.csv",
        &BARS.replace("10.5,12,10,", "10.5,9,10,"),
    );
    assert!(
        matches!(&err, DataError::InvalidValue { column, row: 1, value, .. } if column == "High" && *value == 9.0),
        "{err}"
    );
}

#[test]
fn panel_helpers() {
    let panel = embedded::sp500_panel().unwrap();
    let index = embedded::sp500_index().unwrap();
    assert_eq!(panel.column("AAPL").unwrap()[0], 0.264);
    assert!(matches!(
        panel.column("TSLA"),
        Err(DataError::MissingColumn { .. })
    ));
    let (start, end) = ("2008-01-01".parse().unwrap(), "2009-01-01".parse().unwrap());
    let year = panel.slice_dates(start, end);
    assert!(year.dates.iter().all(|d| *d >= start && *d < end));
    assert_eq!(year.close.nrows(), year.dates.len());
    assert!((250..=256).contains(&year.n_dates()));

    // Aligning a panel with part of the index keeps the common dates only.
    let later = index.slice_dates("2000-01-01".parse().unwrap(), "2030-01-01".parse().unwrap());
    let (p, i) = panel.align(&later).unwrap();
    assert_eq!(p.dates, i.dates);
    assert_eq!(p.dates[0], later.dates[0]);
    assert_eq!(
        p.close.row(0),
        panel
            .close
            .row(panel.dates.binary_search(&later.dates[0]).unwrap())
    );
    let empty = index.slice_dates(end, end);
    assert!(matches!(
        panel.align(&empty),
        Err(DataError::EmptyData { .. })
    ));

    let row_major = panel.to_row_major();
    assert_eq!(row_major[20 + 1], panel.close[[1, 1]]);
}

#[test]
fn embedded_data_sets() {
    let googl = embedded::googl().unwrap();
    assert_eq!(googl.len(), 2335);
    assert_eq!(googl.dates[0].to_string(), "2009-05-22");
    assert_eq!(googl.dates[2334].to_string(), "2018-08-29");
    assert_eq!(googl.close[0], 196.946945);
    assert_eq!(googl.close[2334], 1264.650024);
    assert_eq!(googl.volume.as_ref().unwrap()[0], 3_433_700.0);

    let panel = embedded::sp500_panel().unwrap();
    assert_eq!(panel.tickers.len(), 20);
    assert_eq!(panel.tickers[0], "AAPL");
    assert_eq!(panel.tickers[19], "XOM");
    assert_eq!(panel.dates.first().unwrap().to_string(), "1990-01-02");
    assert_eq!(panel.dates.last().unwrap().to_string(), "2022-12-28");
    assert_eq!(panel.close[[0, 19]], 4.068);

    let index = embedded::sp500_index().unwrap();
    assert_eq!(index.tickers, ["SP500"]);
    assert_eq!(index.close[[0, 0]], 359.69);
    assert_eq!(index.dates, panel.dates);
}
