//! Metrics as JSON lines: one event per line, appended and flushed.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::{AlgoError, Callback, TrainEvent};

/// Appends every [`TrainEvent`] to a `.jsonl` file (flushed after each line, so a crash loses
/// at most the line being written).
pub struct MetricsWriter {
    path: PathBuf,
    out: BufWriter<File>,
    /// First write error, if any (training goes on; the caller can check).
    pub error: Option<std::io::Error>,
}

impl MetricsWriter {
    /// Open (append to) `path`, creating its directory.
    pub fn append(path: &Path) -> Result<Self, AlgoError> {
        let io = |source| AlgoError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            error: None,
        })
    }

    /// Where the lines go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write one event.
    pub fn write(&mut self, event: &TrainEvent) -> Result<(), std::io::Error> {
        // NaN is not JSON: serde_json writes it as null, which readers treat as missing.
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

impl Callback for MetricsWriter {
    fn on_event(&mut self, event: &TrainEvent) -> ControlFlow<()> {
        if let Err(e) = self.write(event) {
            self.error.get_or_insert(e);
        }
        ControlFlow::Continue(())
    }
}
