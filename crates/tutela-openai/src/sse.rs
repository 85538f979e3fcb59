//! Server-sent events of an OpenAI stream: `data:` lines split into events, `[DONE]`, and
//! the bounds a gateway needs against a broken or hostile upstream (an event's size, the time
//! one event may take, the time between events). The separator search resumes where it
//! stopped, so a long event costs linear time.

use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::WireError;

/// One event of a stream, its data read as a `T` (a [`crate::ChatCompletionChunk`], or any
/// JSON value).
#[derive(Debug, Clone, PartialEq)]
pub enum Event<T = Value> {
    /// An event whose data is a `T` (`chat.completion.chunk`, a Responses event, an error).
    Chunk(T),
    /// An event that is not JSON, or not a `T`; skipped and counted by the caller.
    Malformed,
    /// `[DONE]`.
    Done,
}

/// A stream of events; an `Err` ends it (disconnect, timeout, an event too large).
pub type Events<T = Value> = Pin<Box<dyn Stream<Item = Result<Event<T>, WireError>> + Send>>;

/// The largest upstream SSE event tutela reads (a chunk is a few hundred bytes; a tool call's
/// arguments or logprobs may make one larger). A longer event ends the stream with a 502-kind
/// error instead of growing memory without bound.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Splits an SSE byte stream into events. Waits at most `idle` for the next event to begin,
/// and at most `idle` from an event's first byte to its end (a trickle of bytes without a
/// separator does not keep it alive); an event longer than [`MAX_EVENT_BYTES`] ends the
/// stream. The separator search resumes where it stopped, so a long event costs linear time.
pub fn events<T, S>(bytes: S, idle: Duration) -> Events<T>
where
    T: DeserializeOwned + Send + 'static,
    S: Stream<Item = Result<Bytes, WireError>> + Send + 'static,
{
    struct St<S> {
        inner: Pin<Box<S>>,
        buf: BytesMut,
        /// Bytes of `buf` already searched for a separator.
        searched: usize,
        /// When the event now in `buf` began.
        started: Option<tokio::time::Instant>,
        done: bool,
    }
    let st = St {
        inner: Box::pin(bytes),
        buf: BytesMut::new(),
        searched: 0,
        started: None,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(st, move |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if let Some(event) = next_event(&mut st.buf, &mut st.searched) {
                st.started = None;
                match event {
                    Some(ev) => {
                        if matches!(ev, Event::Done) {
                            st.done = true;
                        }
                        return Some((Ok(ev), st));
                    }
                    None => continue, // comment or empty event
                }
            }
            if st.buf.len() > MAX_EVENT_BYTES {
                st.done = true;
                return Some((
                    Err(WireError::Invalid(format!(
                        "a stream event longer than {MAX_EVENT_BYTES} bytes"
                    ))),
                    st,
                ));
            }
            if st.buf.is_empty() {
                st.started = None;
            }
            let deadline = match st.started {
                Some(t) => t + idle,
                None => tokio::time::Instant::now() + idle,
            };
            match tokio::time::timeout_at(deadline, st.inner.next()).await {
                Err(_) => {
                    st.done = true;
                    let what = if st.started.is_some() {
                        "a stream event did not end"
                    } else {
                        "the stream was idle"
                    };
                    return Some((
                        Err(WireError::Timeout(format!(
                            "{what} for {} ms",
                            idle.as_millis()
                        ))),
                        st,
                    ));
                }
                Ok(None) => {
                    st.done = true;
                    return Some((
                        Err(WireError::Unreachable("stream ended before [DONE]".into())),
                        st,
                    ));
                }
                Ok(Some(Err(e))) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                Ok(Some(Ok(b))) => {
                    if st.started.is_none() && !b.is_empty() {
                        st.started = Some(tokio::time::Instant::now());
                    }
                    st.buf.extend_from_slice(&b);
                }
            }
        }
    }))
}

/// Takes one complete event off the buffer: `None` if none is complete yet; `Some(None)` for an
/// event without data. `searched` is how far the buffer was already searched.
fn next_event<T: DeserializeOwned>(
    buf: &mut BytesMut,
    searched: &mut usize,
) -> Option<Option<Event<T>>> {
    let Some((end, sep)) = find_separator(buf, searched.saturating_sub(2)) else {
        *searched = buf.len();
        return None;
    };
    *searched = 0;
    let raw = buf.split_to(end + sep);
    let text = &raw[..end];
    let mut data: Vec<u8> = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(rest);
        }
    }
    if data.is_empty() {
        return Some(None);
    }
    if data == b"[DONE]" {
        return Some(Some(Event::Done));
    }
    Some(Some(match serde_json::from_slice::<T>(&data) {
        Ok(v) => Event::Chunk(v),
        Err(_) => Event::Malformed,
    }))
}

fn find_separator(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some((i, 2));
            }
            if buf[i + 1] == b'\r' && i + 2 < buf.len() && buf[i + 2] == b'\n' {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sse_split_anywhere_parses_the_same() {
        let text =
            "data: {\"a\":1}\n\n: comment\n\ndata: nope\n\r\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        for cut in 1..text.len() {
            let (a, b) = text.split_at(cut);
            let parts: Vec<Result<Bytes, WireError>> = vec![
                Ok(Bytes::copy_from_slice(a.as_bytes())),
                Ok(Bytes::copy_from_slice(b.as_bytes())),
            ];
            let mut s =
                events::<Value, _>(futures_util::stream::iter(parts), Duration::from_secs(5));
            let mut kinds = Vec::new();
            while let Some(ev) = s.next().await {
                kinds.push(match ev.unwrap() {
                    Event::Chunk(v) => v.to_string(),
                    Event::Malformed => "bad".into(),
                    Event::Done => "done".into(),
                });
            }
            assert_eq!(
                kinds,
                ["{\"a\":1}", "bad", "{\"b\":2}", "done"],
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn an_event_without_separators_is_bounded() {
        // 2 MB of data without a blank line: the stream ends with an error once the event
        // passes the bound, instead of buffering it all.
        let piece = Bytes::from(vec![b'x'; 64 * 1024]);
        let parts = std::iter::once(Bytes::from_static(b"data: "))
            .chain(std::iter::repeat_n(piece, 32))
            .map(Ok)
            .collect::<Vec<Result<Bytes, WireError>>>();
        let mut s = events::<Value, _>(futures_util::stream::iter(parts), Duration::from_secs(5));
        let first = s.next().await;
        assert!(
            matches!(&first, Some(Err(WireError::Invalid(m))) if m.contains("longer")),
            "expected a bound error, got {first:?}"
        );
        assert!(s.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_event_times_out_as_a_whole() {
        // One byte every 100 ms never completes an event: each byte would reset an idle
        // timer, but the event as a whole must end within the bound (1 s).
        let trickle = futures_util::stream::unfold(0u32, |n| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((Ok(Bytes::from_static(b"x")), n + 1))
        });
        let mut s = events::<Value, _>(trickle, Duration::from_secs(1));
        let t = tokio::time::Instant::now();
        let first = s.next().await;
        assert!(
            matches!(&first, Some(Err(WireError::Timeout(m))) if m.contains("did not end")),
            "expected a timeout, got {first:?}"
        );
        assert!(
            t.elapsed() <= Duration::from_millis(1100),
            "{:?}",
            t.elapsed()
        );
    }
}
