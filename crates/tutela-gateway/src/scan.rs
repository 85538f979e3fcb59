//! The seam to the detectors: the gateway asks for findings on whole texts and on streams;
//! tests may pass a fake.

use tutela_types::{Finding, Side};

/// Findings for one text.
pub trait Scanner: Send + Sync + 'static {
    /// Scans a whole text; `context` is the preceding user turn (assistant side).
    fn scan(&self, side: Side, text: &str, context: Option<&str>) -> Vec<Finding>;
    /// A streaming scan: any split of a text yields the same findings as [`Scanner::scan`].
    fn stream<'a>(&'a self, side: Side, context: Option<&str>) -> Box<dyn ScanStream + 'a>;
}

/// A streaming scan in progress.
pub trait ScanStream: Send {
    /// Adds a chunk; returns the findings it completed.
    fn feed(&mut self, chunk: &str) -> Vec<Finding>;
    /// Ends the text; returns the remaining findings.
    fn finish(self: Box<Self>) -> Vec<Finding>;
    /// Bytes fed but not yet scanned (an unfinished sentence); they must not be released.
    fn pending(&self) -> usize;
}

/// A scanner that finds nothing (for a deployment that switches detection off, and tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoScanner;

struct NoStream;

impl ScanStream for NoStream {
    fn feed(&mut self, _chunk: &str) -> Vec<Finding> {
        Vec::new()
    }
    fn finish(self: Box<Self>) -> Vec<Finding> {
        Vec::new()
    }
    fn pending(&self) -> usize {
        0
    }
}

impl Scanner for NoScanner {
    fn scan(&self, _side: Side, _text: &str, _context: Option<&str>) -> Vec<Finding> {
        Vec::new()
    }
    fn stream<'a>(&'a self, _side: Side, _context: Option<&str>) -> Box<dyn ScanStream + 'a> {
        Box::new(NoStream)
    }
}
