//! The `webrtc` crate's tokio runtime, with UDP sockets that wake the relay only for reads.
//!
//! The crate's own tokio sockets are registered for reading *and* writing, edge-triggered.
//! Linux signals a UDP socket writable again each time one of its sent datagrams is freed —
//! on loopback when the browser reads it — so every forwarded packet came back as an
//! `EPOLLOUT` event: an `epoll_wait` return (often a whole wake-up of the relay thread) with
//! nothing to do. With Chromium clients 41 % of the relay thread's `epoll_wait` returns were
//! those. Here sockets are registered for reads only; a send is tried at once and, in the
//! rare case that the socket buffer is full, tried again after a millisecond.
//! Everything else (tasks, the reactor pool, timers, TCP) is the crate's `TokioRuntime`.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::mux::Endpoint;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit, UdpSockRef, UdpSocketState,
};

/// How long a send waits when the socket's buffer is full before it is tried again.
const SEND_RETRY: Duration = Duration::from_millis(1);

#[derive(Default, Clone)]
pub struct RelayRuntime {
    /// The connection's end of the shared single-port sockets, when the relay has them.
    shared: Option<Arc<Endpoint>>,
}

impl RelayRuntime {
    /// Sockets of a connection that lives on the relay's shared ports.
    pub fn shared(endpoint: Arc<Endpoint>) -> RelayRuntime {
        RelayRuntime {
            shared: Some(endpoint),
        }
    }
}

impl std::fmt::Debug for RelayRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayRuntime")
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Runtime for RelayRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        if let Some(ep) = self.shared.as_ref().filter(|ep| ep.shares_udp()) {
            // The socket the crate bound only names the connection's address; the shared
            // socket carries its traffic.
            return ep.udp_socket(socket.local_addr()?);
        }
        socket.set_nonblocking(true)?;
        // GRO on receive, GSO on send, as the crate's own sockets.
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        // SAFETY: the `AsyncFd` owns the socket, whose descriptor stays open and unchanged
        // until the `AsyncFd` is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE)? };
        Ok(Arc::new(ReadWakeSocket {
            fd,
            state,
            retry: SendRetry::default(),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        if let Some(ep) = self.shared.as_ref().filter(|ep| ep.shares_tcp()) {
            return ep.tcp_listener(listener.local_addr()?);
        }
        TokioRuntime.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        TokioRuntime.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        TokioRuntime.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TokioRuntime.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TokioRuntime.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio (read-only socket wake-ups)"
    }
}

/// A UDP socket whose registration asks the reactor for readability only.
struct ReadWakeSocket {
    fd: AsyncFd<std::net::UdpSocket>,
    state: UdpSocketState,
    retry: SendRetry,
}

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

impl std::fmt::Debug for ReadWakeSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadWakeSocket")
            .field("socket", self.fd.get_ref())
            .finish()
    }
}

impl AsyncUdpSocket for ReadWakeSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }

    fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        self.retry.poll(cx, || {
            self.state
                .try_send(UdpSockRef::from(self.fd.get_ref()), transmit)
                .map(|()| transmit.contents.len())
        })
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(guard)) => guard,
            };
            let bufs = &mut *bufs;
            let meta = &mut *meta;
            // Through `try_io`, so that "nothing more to read" clears the cached readiness
            // and the next poll waits for the reactor.
            match guard.try_io(|fd| {
                let n = self
                    .state
                    .recv(UdpSockRef::from(fd.get_ref()), bufs, meta)?;
                if n == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                // A zero-length datagram reports stride 0; the driver divides by it.
                for m in &mut meta[..n] {
                    if m.stride == 0 {
                        m.stride = m.len.max(1);
                    }
                }
                Ok(n)
            }) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }
}
