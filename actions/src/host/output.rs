//! Capturing a command's output streams, shared by the transports: each
//! stream is kept up to a limit, and reading stops shortly after the command
//! ends even if something it started in the background holds the pipe open.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::task::JoinHandle;

use super::transport::CapturedOutput;

/// How much of each output stream is kept by default: 1 MiB.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// How long output is still read after the command exits: a daemon it
/// started in the background may hold the pipes open for ever.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Reads a pipe to its end, keeping up to `limit` bytes in `sink`.
pub(super) async fn capture(
    mut pipe: impl AsyncRead + Unpin,
    limit: usize,
    sink: Arc<Mutex<CapturedOutput>>,
) {
    let mut buffer = [0_u8; 8192];
    loop {
        let read = match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        append(&sink, &buffer[..read], limit);
    }
}

/// Adds `bytes` to the captured output, keeping `limit` bytes at most in all.
pub(super) fn append(sink: &Mutex<CapturedOutput>, bytes: &[u8], limit: usize) {
    let mut captured = sink.lock().unwrap_or_else(PoisonError::into_inner);
    let room = limit.saturating_sub(captured.bytes.len());
    let kept = bytes.len().min(room);
    captured.bytes.extend_from_slice(&bytes[..kept]);
    captured.truncated |= kept < bytes.len();
}

/// Lets the readers reach the end of their pipes, for a short while at most; for each,
/// whether it did (a reader still running at the deadline is stopped).
pub(super) async fn finish_reading(readers: [Option<JoinHandle<()>>; 2]) -> [bool; 2] {
    let deadline = tokio::time::Instant::now() + OUTPUT_GRACE;
    let mut ended = [true; 2];
    for (reader, ended) in readers.into_iter().zip(&mut ended) {
        let Some(reader) = reader else {
            continue;
        };
        let abort = reader.abort_handle();
        if tokio::time::timeout_at(deadline, reader).await.is_err() {
            abort.abort();
            *ended = false;
        }
    }
    ended
}

/// The output captured so far; `ended` says whether its stream was read to its end.
pub(super) fn take(sink: &Mutex<CapturedOutput>, ended: bool) -> CapturedOutput {
    let mut output = std::mem::take(&mut *sink.lock().unwrap_or_else(PoisonError::into_inner));
    output.cut_short = !ended;
    output
}
