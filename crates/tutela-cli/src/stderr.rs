//! Standard error that never fails: what `tutela serve` prints and logs goes through it.
//!
//! `eprintln!` panics when writing to standard error fails, and `tracing-subscriber`'s fmt
//! layer answers a failed write by calling `eprintln!` (its "internal errors"). When the
//! gateway's log is a file on a disk that fills up, every log line then panics: in the store's
//! writer task (the writer stopped: "the audit writer has stopped") and in `serve`'s shutdown
//! messages (SIGTERM ended in exit 101). A service must not die because its log cannot be
//! written: here a failed write is dropped and counted ([`dropped`]), never raised.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Writes that standard error refused since start (lines lost, not raised).
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Standard error, lossy: a write that fails is counted and reported as written.
#[derive(Clone, Copy, Debug, Default)]
pub struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(lossy(std::io::stderr().lock().write(buf), buf.len()))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        lossy(std::io::stderr().lock().write_all(buf).map(|()| 0), 0);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        lossy(std::io::stderr().lock().flush().map(|()| 0), 0);
        Ok(())
    }
}

/// The bytes written, or `all` after counting a failure.
fn lossy(result: std::io::Result<usize>, all: usize) -> usize {
    match result {
        Ok(n) => n,
        Err(_) => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            all
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LossyStderr {
    type Writer = LossyStderr;

    fn make_writer(&'a self) -> Self::Writer {
        LossyStderr
    }
}

/// `eprintln!` that never panics: a line standard error refuses is dropped and counted.
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!($crate::stderr::LossyStderr, $($arg)*);
    }};
}
pub(crate) use say;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_counted_not_raised() {
        let before = dropped();
        assert_eq!(
            lossy(
                Err(std::io::Error::from(std::io::ErrorKind::StorageFull)),
                7
            ),
            7
        );
        assert_eq!(dropped(), before + 1);
        assert_eq!(lossy(Ok(3), 7), 3);
        assert_eq!(dropped(), before + 1);
    }
}
