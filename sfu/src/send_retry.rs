//! Sending on a socket that is registered for reads only.
//!
//! Both kinds of socket the relay gives the `webrtc` crate — a connection's own UDP socket
//! (`runtime`) and its end of the shared single-port socket (`mux`) — ask the reactor for
//! readability only, so a send that finds the socket buffer full cannot wait for the socket
//! to become writable. This is how both of them wait instead; it lives apart so that neither
//! of those modules needs the other for it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long a send waits when the socket's buffer is full before it is tried again.
const SEND_RETRY: Duration = Duration::from_millis(1);

/// Sends on a socket that is not registered for writability: tried at once and, when the
/// socket buffer is full, tried again after `SEND_RETRY`.
#[derive(Default)]
pub(crate) struct SendRetry(Mutex<Option<Pin<Box<tokio::time::Sleep>>>>);

impl SendRetry {
    pub(crate) fn poll(
        &self,
        cx: &mut Context<'_>,
        mut send: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let mut waiting = self.0.lock().expect("retry lock");
        loop {
            if let Some(sleep) = waiting.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *waiting = None;
            }
            match send() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *waiting = Some(Box::pin(tokio::time::sleep(SEND_RETRY)));
                }
                other => return Poll::Ready(other),
            }
        }
    }
}
