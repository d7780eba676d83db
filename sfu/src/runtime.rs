//! The `webrtc` crate's tokio runtime, with UDP sockets that wake the relay only for reads.
//!
//! The crate's own tokio sockets are registered for reading *and* writing, edge-triggered.
//! Linux signals a UDP socket writable again each time one of its sent datagrams is freed —
//! on loopback when the browser reads it — so every forwarded packet came back as an
//! `EPOLLOUT` event: an `epoll_wait` return (often a whole wake-up of the relay thread) with
//! nothing to do. With Chromium clients 41 % of the relay thread's `epoll_wait` returns were
//! those. Here sockets are registered for reads only; a send is tried at once and, in the
//! rare case that the socket buffer is full, tried again after a millisecond (`send_retry`).
//!
//! Once its connection is up, a connection's timers are moved to the relay's shared tick
//! (`interceptors::TICK`), as the interceptors' own already are. The ICE agent of a
//! connected peer asks to be woken every 200 ms, each at its own phase; on the tick, every
//! connection's ICE, NACK, feedback and report timers are served by one wake-up of the relay
//! thread. While connecting (ICE checks, DTLS handshake) timers are exact.
//! A connection's driver and tasks run on its room's reactor (`reactors`) when the relay has
//! reactors; everything else (TCP, name resolution) is the crate's `TokioRuntime`.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::mux::Endpoint;
use crate::send_retry::SendRetry;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit, UdpSockRef, UdpSocketState,
};

#[derive(Default, Clone)]
pub struct RelayRuntime {
    /// The connection's end of the shared single-port sockets, when the relay has them.
    shared: Option<Arc<Endpoint>>,
    /// Set while the connection is connected: its timers then wait for the shared tick.
    on_tick: Arc<AtomicBool>,
    /// The room's reactor, which runs the connection's driver and tasks (`reactors`); none:
    /// the crate's own choice.
    reactor: Option<tokio::runtime::Handle>,
}

impl RelayRuntime {
    /// Sockets of a connection that lives on the relay's shared ports.
    pub fn shared(endpoint: Arc<Endpoint>) -> RelayRuntime {
        RelayRuntime {
            shared: Some(endpoint),
            ..RelayRuntime::default()
        }
    }

    /// Runs the connection's driver and tasks on `reactor` (its room's).
    pub fn on_reactor(mut self, reactor: tokio::runtime::Handle) -> RelayRuntime {
        self.reactor = Some(reactor);
        self
    }

    /// The switch that moves this connection's timers to the shared tick (set it when the
    /// connection is connected, clear it when it is not).
    pub fn tick_switch(&self) -> Arc<AtomicBool> {
        self.on_tick.clone()
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
        match &self.reactor {
            Some(reactor) => Box::new(Task(reactor.spawn(future))),
            None => TokioRuntime.spawn(future),
        }
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        match &self.reactor {
            Some(reactor) => Box::new(Task(reactor.spawn(future))),
            None => TokioRuntime.spawn_reactor(reactor_pool_size, future),
        }
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        if let Some(ep) = self.shared.as_ref().filter(|ep| ep.shares_udp()) {
            // The socket the crate bound only names the connection's address; the shared
            // socket carries its traffic.
            return ep.udp_socket(socket.local_addr()?);
        }
        socket.set_nonblocking(true)?;
        // GSO on send, as the crate's own sockets; GRO on receive only if it cannot be turned
        // off again (see `gro_off`).
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        let gro = !gro_off(&socket);
        // SAFETY: the `AsyncFd` owns the socket, whose descriptor stays open and unchanged
        // until the `AsyncFd` is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE)? };
        Ok(Arc::new(ReadWakeSocket {
            fd,
            state,
            gro,
            retry: SendRetry::default(),
            ahead: Mutex::default(),
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
        if !self.on_tick.load(Ordering::Relaxed) {
            return TokioRuntime.sleep(duration);
        }
        let due = on_next_tick(Instant::now() + duration, crate::interceptors::epoch());
        Box::pin(tokio::time::sleep_until(due.into()))
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

/// A task on the room's reactor; detached when dropped, as the crate expects.
struct Task(tokio::task::JoinHandle<()>);

impl JoinHandle for Task {
    fn detach(&self) {}

    fn abort(&self) {
        self.0.abort();
    }

    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

/// When a timer due at `deadline` fires on the shared tick.
fn on_next_tick(deadline: Instant, epoch: Instant) -> Instant {
    crate::interceptors::on_tick(deadline, epoch, crate::interceptors::TICK)
}

/// Turns UDP GRO off on a connection's own socket; whether it did.
///
/// With GRO the kernel may coalesce datagrams of one sender into one read, so every read
/// buffer must hold 64 of them: the crate keeps two such buffers per connection and this
/// module a third, about 96 KB each. Browsers do not send with GSO and RTP packets of one
/// stream differ in size, so on a connection's own socket GRO merges next to nothing, and
/// reads of one datagram need 2,000 bytes, as on the shared port's socket (`mux`), which
/// reads one datagram at a time.
fn gro_off(socket: &std::net::UdpSocket) -> bool {
    #[cfg(target_os = "linux")]
    {
        crate::sockopt::set_int(socket, libc::SOL_UDP, libc::UDP_GRO, 0).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        false
    }
}

/// A UDP socket whose registration asks the reactor for readability only.
///
/// Each read asks the kernel for two datagrams. Two: the second waits for the next read.
/// One: the socket is empty, and the next read waits for the reactor instead of asking the
/// kernel again. (The crate reads until a read finds nothing, so one system call per
/// wake-up, out of about three, was a read that found nothing.)
struct ReadWakeSocket {
    fd: AsyncFd<std::net::UdpSocket>,
    state: UdpSocketState,
    /// Whether the kernel may hand over several datagrams coalesced in one read.
    gro: bool,
    retry: SendRetry,
    ahead: Mutex<ReadAhead>,
}

/// A datagram read together with the previous one, not yet handed over.
#[derive(Default)]
struct ReadAhead {
    buf: Vec<u8>,
    meta: Option<RecvMeta>,
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
        if self.gro {
            self.state.gro_segments()
        } else {
            1
        }
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
        let (Some(out), Some(out_meta)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let mut ahead = self.ahead.lock().expect("read-ahead lock");
        if let Some(m) = ahead.meta.take() {
            let n = m.len.min(out.len());
            out[..n].copy_from_slice(&ahead.buf[..n]);
            *out_meta = m;
            out_meta.len = n;
            return Poll::Ready(Ok(1));
        }
        if ahead.buf.len() < out.len() {
            // As large as the crate's own buffer, so that a read-ahead always fits in it; zeroed
            // by the allocator (fresh pages), so only what datagrams fill is ever touched.
            ahead.buf = vec![0; out.len()];
        }
        let ReadAhead {
            buf: ahead_buf,
            meta: ahead_meta,
        } = &mut *ahead;
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(guard)) => guard,
            };
            let mut metas = [RecvMeta::default(); 2];
            // Through `try_io`, so that "nothing to read" clears the cached readiness and the
            // next poll waits for the reactor.
            let read = guard.try_io(|fd| {
                let mut two = [
                    IoSliceMut::new(&mut out[..]),
                    IoSliceMut::new(&mut ahead_buf[..]),
                ];
                let n = self
                    .state
                    .recv(UdpSockRef::from(fd.get_ref()), &mut two, &mut metas)?;
                if n == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            let n = match read {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            };
            // A zero-length datagram reports stride 0; the driver divides by it.
            for m in &mut metas[..n] {
                if m.stride == 0 {
                    m.stride = m.len.max(1);
                }
            }
            *out_meta = metas[0];
            if n == 2 {
                *ahead_meta = Some(metas[1]);
            } else {
                // Asked for two, given one: the socket was empty. The driver's next read
                // would only learn that again, with a system call; the reactor says when
                // more comes.
                guard.clear_ready();
            }
            return Poll::Ready(Ok(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_timer_waits_for_the_next_tick() {
        let epoch = Instant::now();
        let ms = Duration::from_millis;
        // The ICE agent's 200 ms check, asked for between ticks, lands on one.
        assert_eq!(on_next_tick(epoch + ms(237), epoch), epoch + ms(300));
        // A deadline on a tick stays there: nothing waits longer than it asked for
        // because of the alignment alone.
        assert_eq!(on_next_tick(epoch + ms(400), epoch), epoch + ms(400));
        assert_eq!(on_next_tick(epoch + ms(401), epoch), epoch + ms(500));
    }

    async fn recv(socket: &dyn AsyncUdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 2000];
        let mut meta = [RecvMeta::default()];
        std::future::poll_fn(|cx| {
            socket.poll_recv(cx, &mut [IoSliceMut::new(&mut buf)], &mut meta)
        })
        .await
        .expect("recv");
        (buf[..meta[0].len].to_vec(), meta[0].addr)
    }

    /// Whether a read would wait (and so leaves the socket as it is).
    fn waits(socket: &dyn AsyncUdpSocket) -> bool {
        let mut buf = vec![0u8; 2000];
        let mut meta = [RecvMeta::default()];
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        socket
            .poll_recv(&mut cx, &mut [IoSliceMut::new(&mut buf)], &mut meta)
            .is_pending()
    }

    #[tokio::test]
    async fn a_connection_s_own_socket_reads_one_datagram_at_a_time_even_from_gso() {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = std_socket.local_addr().unwrap();
        let socket = RelayRuntime::default().wrap_udp_socket(std_socket).unwrap();
        // GRO is off, so the crate's read buffers hold one datagram, not 64.
        assert_eq!(socket.max_gro_segments(), 1);

        // A sender that coalesces four datagrams of 1,000 bytes into one send (GSO), which a
        // socket with GRO on would read as one 4,000-byte buffer.
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let from = peer.local_addr().unwrap();
        let state = UdpSocketState::new(UdpSockRef::from(&peer)).unwrap();
        let burst: Vec<u8> = (0..4u8).flat_map(|i| vec![i; 1000]).collect();
        let segment_size = (state.max_gso_segments() > 1).then_some(1000);
        let sends = if segment_size.is_some() { 1 } else { 4 };
        for chunk in burst.chunks(burst.len() / sends) {
            let transmit = Transmit {
                destination: to,
                ecn: None,
                contents: chunk,
                segment_size,
                src_ip: None,
            };
            state.try_send(UdpSockRef::from(&peer), &transmit).unwrap();
        }
        for i in 0..4u8 {
            let (got, sender) = recv(&*socket).await;
            assert_eq!(sender, from);
            // A coalesced read would be longer, or hold the next datagram's bytes.
            assert_eq!(got.len(), 1000, "datagram {i}");
            assert!(got.iter().all(|b| *b == i), "datagram {i}");
        }
        assert!(waits(&*socket));
    }

    #[tokio::test]
    async fn reading_ahead_loses_and_reorders_nothing() {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = std_socket.local_addr().unwrap();
        let socket = RelayRuntime::default().wrap_udp_socket(std_socket).unwrap();
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let from = peer.local_addr().unwrap();

        for round in 0..3u8 {
            // An odd count, so that the last datagram of a burst comes alone, and an even
            // one, so that it comes as a read-ahead.
            let burst: Vec<Vec<u8>> = (0..3 + round).map(|i| vec![round, i, 7, 7]).collect();
            for d in &burst {
                peer.send_to(d, to).await.unwrap();
            }
            for d in &burst {
                assert_eq!(recv(&*socket).await, (d.clone(), from));
            }
            assert!(waits(&*socket), "round {round}: nothing more was sent");
        }
        // After a read that found the socket empty, a new datagram still wakes the reader.
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            peer.send_to(b"late", to).await.unwrap();
            peer
        });
        let got = tokio::time::timeout(Duration::from_secs(5), recv(&*socket)).await;
        assert_eq!(
            got.expect("woken by the late datagram"),
            (b"late".to_vec(), from)
        );
        later.await.unwrap();
    }
}
