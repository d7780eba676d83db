//! One UDP port and one TCP port shared by every connection of the relay.
//!
//! The `webrtc` crate binds its own sockets for each connection. Through its runtime hook
//! (`Runtime::wrap_udp_socket`, `wrap_tcp_listener`) the relay gives each connection a
//! *virtual* socket instead, fed from one shared socket per local address on the configured
//! port. Datagrams are routed by the ICE username fragment of STUN binding requests — the
//! relay chooses each connection's fragment, so it knows whose a request is — and after that
//! by the remote address the connection's checks came from or went to. An ICE-TCP stream is
//! routed the same way, by the STUN request that opens it (RFC 4571 framing).
//!
//! The connection itself keeps believing in the ephemeral address the crate bound (its
//! candidates name it); the relay announces the shared port instead (`Relay::announce`).

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::send_retry::SendRetry;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, Interest};
use tokio::sync::mpsc;
use webrtc::runtime::{AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, RecvMeta, Transmit};

/// Datagrams waiting for a connection that is not reading: beyond this, new ones are dropped.
const INBOX_LIMIT: usize = 512;
/// How long an ICE-TCP stream may take to send its first STUN request.
const TCP_FIRST_FRAME: Duration = Duration::from_secs(10);
/// Socket buffers of the shared UDP socket: it queues what every connection receives (the
/// kernel caps this at `net.core.rmem_max` / `wmem_max`).
const SHARED_BUFFER: usize = 8 << 20;

const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const STUN_BINDING_REQUEST: u16 = 0x0001;
const STUN_USERNAME: u16 = 0x0006;

/// The local username fragment of a STUN binding request (`USERNAME` is
/// "<receiver's ufrag>:<sender's ufrag>"), or `None` for anything else.
pub fn stun_request_ufrag(datagram: &[u8]) -> Option<&str> {
    if datagram.len() < 20 || datagram[4..8] != STUN_MAGIC_COOKIE {
        return None;
    }
    let typ = u16::from_be_bytes([datagram[0], datagram[1]]);
    if typ != STUN_BINDING_REQUEST {
        return None;
    }
    let length = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let body = datagram.get(20..20 + length)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let attr = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if attr == STUN_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|u| !u.is_empty());
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

type Accepted = (Arc<dyn AsyncTcpStream>, SocketAddr);

/// The shared sockets and who gets what arrives on them.
pub struct Mux {
    udp_port: Option<u16>,
    tcp_port: Option<u16>,
    udp: Mutex<HashMap<IpAddr, Arc<AsyncFd<std::net::UdpSocket>>>>,
    tcp: Mutex<HashMap<IpAddr, ()>>,
    by_ufrag: Mutex<HashMap<String, Weak<Endpoint>>>,
    by_addr: Mutex<HashMap<SocketAddr, Weak<Endpoint>>>,
}

/// One connection's end of the shared sockets.
pub struct Endpoint {
    ufrag: String,
    mux: Arc<Mux>,
    /// Datagrams for the connection, per local address.
    udp: Mutex<HashMap<IpAddr, Inbox>>,
    /// Where streams accepted for the connection go, per local address, with the address the
    /// connection's own listener had.
    tcp: Mutex<HashMap<IpAddr, (SocketAddr, mpsc::UnboundedSender<Accepted>)>>,
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<(Vec<u8>, SocketAddr)>,
    waker: Option<Waker>,
}

impl Mux {
    pub fn new(udp_port: Option<u16>, tcp_port: Option<u16>) -> Arc<Mux> {
        Arc::new(Mux {
            udp_port,
            tcp_port,
            udp: Mutex::new(HashMap::new()),
            tcp: Mutex::new(HashMap::new()),
            by_ufrag: Mutex::new(HashMap::new()),
            by_addr: Mutex::new(HashMap::new()),
        })
    }

    pub fn udp_port(&self) -> Option<u16> {
        self.udp_port
    }

    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp_port
    }

    /// A connection whose ICE username fragment is `ufrag`.
    pub fn endpoint(self: &Arc<Self>, ufrag: &str) -> Arc<Endpoint> {
        let ep = Arc::new(Endpoint {
            ufrag: ufrag.to_string(),
            mux: self.clone(),
            udp: Mutex::new(HashMap::new()),
            tcp: Mutex::new(HashMap::new()),
        });
        self.by_ufrag
            .lock()
            .expect("ufrag lock")
            .insert(ufrag.to_string(), Arc::downgrade(&ep));
        ep
    }

    /// Connections with a route, for the leak check.
    pub fn routes(&self) -> usize {
        self.by_ufrag.lock().expect("ufrag lock").len()
    }

    /// The shared UDP socket on `ip`, bound at first use; its reader runs on the calling
    /// runtime.
    fn udp_socket(self: &Arc<Self>, ip: IpAddr) -> io::Result<Arc<AsyncFd<std::net::UdpSocket>>> {
        let port = self.udp_port.ok_or(io::ErrorKind::Unsupported)?;
        let mut sockets = self.udp.lock().expect("udp lock");
        if let Some(s) = sockets.get(&ip) {
            return Ok(s.clone());
        }
        let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
        socket.set_nonblocking(true)?;
        let tune = socket2::SockRef::from(&socket);
        // Best effort: a smaller buffer still works, it only drops sooner under a burst.
        let _ = tune.set_recv_buffer_size(SHARED_BUFFER);
        let _ = tune.set_send_buffer_size(SHARED_BUFFER);
        // SAFETY: the `AsyncFd` owns the socket, whose descriptor stays open and unchanged until
        // it is dropped.
        let fd = Arc::new(unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE)? });
        sockets.insert(ip, fd.clone());
        tokio::spawn(read_udp(self.clone(), ip, fd.clone()));
        Ok(fd)
    }

    fn route(&self, datagram: &[u8], from: SocketAddr) -> Option<Arc<Endpoint>> {
        if let Some(ufrag) = stun_request_ufrag(datagram) {
            let ep = self
                .by_ufrag
                .lock()
                .expect("ufrag lock")
                .get(ufrag)
                .and_then(Weak::upgrade)?;
            self.by_addr
                .lock()
                .expect("addr lock")
                .insert(from, Arc::downgrade(&ep));
            return Some(ep);
        }
        self.by_addr
            .lock()
            .expect("addr lock")
            .get(&from)
            .and_then(Weak::upgrade)
    }

    /// The TCP acceptor on `ip`, started at first use on the calling runtime.
    fn tcp_acceptor(self: &Arc<Self>, ip: IpAddr) -> io::Result<()> {
        let port = self.tcp_port.ok_or(io::ErrorKind::Unsupported)?;
        let mut started = self.tcp.lock().expect("tcp lock");
        if started.contains_key(&ip) {
            return Ok(());
        }
        let listener = std::net::TcpListener::bind(SocketAddr::new(ip, port))?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        started.insert(ip, ());
        let mux = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        tokio::spawn(mux.clone().hand_over(stream, peer, ip));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ICE-TCP accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(())
    }

    /// Reads the first framed message of an ICE-TCP stream and gives the stream, that message
    /// included, to the connection it names.
    async fn hand_over(
        self: Arc<Self>,
        mut stream: tokio::net::TcpStream,
        peer: SocketAddr,
        ip: IpAddr,
    ) {
        let first = tokio::time::timeout(TCP_FIRST_FRAME, async {
            let len = stream.read_u16().await? as usize;
            let mut frame = vec![0u8; 2 + len];
            frame[..2].copy_from_slice(&(len as u16).to_be_bytes());
            stream.read_exact(&mut frame[2..]).await?;
            io::Result::Ok(frame)
        })
        .await;
        let Ok(Ok(frame)) = first else { return };
        let Some(ep) = stun_request_ufrag(&frame[2..]).and_then(|u| {
            self.by_ufrag
                .lock()
                .expect("ufrag lock")
                .get(u)
                .and_then(Weak::upgrade)
        }) else {
            return;
        };
        let Some((local, tx)) = ep.tcp.lock().expect("tcp lock").get(&ip).cloned() else {
            return;
        };
        let (read_half, write_half) = stream.into_split();
        let stream = Arc::new(MuxTcpStream {
            prefix: Mutex::new(frame),
            read_half,
            write_half,
            local,
            peer,
        });
        let _ = tx.send((stream, peer));
    }
}

async fn read_udp(mux: Arc<Mux>, ip: IpAddr, fd: Arc<AsyncFd<std::net::UdpSocket>>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok(mut guard) = fd.readable().await else {
            return;
        };
        loop {
            match guard.try_io(|s| s.get_ref().recv_from(&mut buf)) {
                Ok(Ok((n, from))) => {
                    if let Some(ep) = mux.route(&buf[..n], from) {
                        ep.deliver(ip, &buf[..n], from);
                    }
                }
                // ICMP errors from one peer (port unreachable) say nothing about the others.
                Ok(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "shared media socket read failed");
                    break;
                }
                Err(_would_block) => break,
            }
        }
    }
}

impl Endpoint {
    fn deliver(&self, ip: IpAddr, datagram: &[u8], from: SocketAddr) {
        let mut inboxes = self.udp.lock().expect("inbox lock");
        let Some(inbox) = inboxes.get_mut(&ip) else {
            return;
        };
        if inbox.queue.len() < INBOX_LIMIT {
            inbox.queue.push_back((datagram.to_vec(), from));
        }
        if let Some(w) = inbox.waker.take() {
            w.wake();
        }
    }

    pub fn shares_udp(&self) -> bool {
        self.mux.udp_port.is_some()
    }

    pub fn shares_tcp(&self) -> bool {
        self.mux.tcp_port.is_some()
    }

    /// The connection's UDP socket on the address the crate bound (`local`, whose port is
    /// only the connection's own name for it).
    pub fn udp_socket(self: &Arc<Self>, local: SocketAddr) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let shared = self.mux.udp_socket(local.ip())?;
        self.udp
            .lock()
            .expect("inbox lock")
            .insert(local.ip(), Inbox::default());
        Ok(Arc::new(MuxUdpSocket {
            ep: self.clone(),
            local,
            shared,
            retry: SendRetry::default(),
        }))
    }

    /// The connection's ICE-TCP listener on the address the crate bound.
    pub fn tcp_listener(
        self: &Arc<Self>,
        local: SocketAddr,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.mux.tcp_acceptor(local.ip())?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.tcp
            .lock()
            .expect("tcp lock")
            .insert(local.ip(), (local, tx));
        Ok(Arc::new(MuxTcpListener {
            ep: self.clone(),
            local,
            accepted: tokio::sync::Mutex::new(rx),
        }))
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let mut by_ufrag = self.mux.by_ufrag.lock().expect("ufrag lock");
        if by_ufrag
            .get(&self.ufrag)
            .is_some_and(|w| w.strong_count() == 0)
        {
            by_ufrag.remove(&self.ufrag);
        }
        drop(by_ufrag);
        self.mux
            .by_addr
            .lock()
            .expect("addr lock")
            .retain(|_, w| w.strong_count() > 0);
    }
}

struct MuxUdpSocket {
    ep: Arc<Endpoint>,
    local: SocketAddr,
    shared: Arc<AsyncFd<std::net::UdpSocket>>,
    retry: SendRetry,
}

impl std::fmt::Debug for MuxUdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxUdpSocket")
            .field("local", &self.local)
            .field("shared", self.shared.get_ref())
            .finish()
    }
}

impl Drop for MuxUdpSocket {
    fn drop(&mut self) {
        self.ep
            .udp
            .lock()
            .expect("inbox lock")
            .remove(&self.local.ip());
    }
}

impl AsyncUdpSocket for MuxUdpSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let sent = self.retry.poll(cx, || {
            self.shared
                .get_ref()
                .send_to(transmit.contents, transmit.destination)
        });
        if let Poll::Ready(Ok(_)) = sent {
            // Answers from there are this connection's.
            let mut by_addr = self.ep.mux.by_addr.lock().expect("addr lock");
            let known = by_addr
                .get(&transmit.destination)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.ep)));
            if !known {
                by_addr.insert(transmit.destination, Arc::downgrade(&self.ep));
            }
        }
        sent
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut inboxes = self.ep.udp.lock().expect("inbox lock");
        let Some(inbox) = inboxes.get_mut(&self.local.ip()) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let (Some(buf), Some(m)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        match inbox.queue.pop_front() {
            Some((datagram, from)) => {
                let n = datagram.len().min(buf.len());
                buf[..n].copy_from_slice(&datagram[..n]);
                m.len = n;
                m.stride = n.max(1);
                m.addr = from;
                m.ecn = None;
                m.dst_ip = Some(self.local.ip());
                Poll::Ready(Ok(1))
            }
            None => {
                inbox.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

struct MuxTcpListener {
    ep: Arc<Endpoint>,
    local: SocketAddr,
    accepted: tokio::sync::Mutex<mpsc::UnboundedReceiver<Accepted>>,
}

impl std::fmt::Debug for MuxTcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxTcpListener")
            .field("local", &self.local)
            .finish()
    }
}

impl Drop for MuxTcpListener {
    fn drop(&mut self) {
        self.ep
            .tcp
            .lock()
            .expect("tcp lock")
            .remove(&self.local.ip());
    }
}

impl AsyncTcpListener for MuxTcpListener {
    fn accept<'a>(
        &'a self,
    ) -> Pin<Box<dyn std::future::Future<Output = io::Result<Accepted>> + Send + 'a>> {
        Box::pin(async move {
            match self.accepted.lock().await.recv().await {
                Some(a) => Ok(a),
                // The sender lives in the endpoint this listener holds: never reached, but
                // waiting is the answer that cannot make the driver spin.
                None => std::future::pending().await,
            }
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// An accepted ICE-TCP stream whose first message was already read to route it.
struct MuxTcpStream {
    prefix: Mutex<Vec<u8>>,
    read_half: tokio::net::tcp::OwnedReadHalf,
    write_half: tokio::net::tcp::OwnedWriteHalf,
    local: SocketAddr,
    peer: SocketAddr,
}

impl std::fmt::Debug for MuxTcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxTcpStream")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish()
    }
}

impl AsyncTcpStream for MuxTcpStream {
    fn read<'a, 'b>(
        &'a self,
        buf: &'b mut [u8],
    ) -> Pin<Box<dyn std::future::Future<Output = io::Result<usize>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            {
                let mut prefix = self.prefix.lock().expect("prefix lock");
                if !prefix.is_empty() {
                    let n = prefix.len().min(buf.len());
                    buf[..n].copy_from_slice(&prefix[..n]);
                    prefix.drain(..n);
                    return Ok(n);
                }
            }
            loop {
                self.read_half.readable().await?;
                match self.read_half.try_read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn write_all<'a, 'b>(
        &'a self,
        buf: &'b [u8],
    ) -> Pin<Box<dyn std::future::Future<Output = io::Result<()>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            let mut rest = buf;
            while !rest.is_empty() {
                self.write_half.writable().await?;
                match self.write_half.try_write(rest) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        // A PRIORITY attribute first, then USERNAME padded to four bytes.
        attr.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        attr.extend_from_slice(&STUN_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        msg.extend_from_slice(&STUN_MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attr);
        msg
    }

    #[test]
    fn a_binding_request_names_the_connection_it_is_for() {
        assert_eq!(
            stun_request_ufrag(&binding_request("relayUfrag:abc")),
            Some("relayUfrag")
        );
        assert_eq!(stun_request_ufrag(&binding_request("odd:x")), Some("odd"));
    }

    #[test]
    fn everything_else_names_none() {
        // A binding response (0x0101), media, a truncated request, an empty username.
        let mut response = binding_request("relayUfrag:abc");
        response[0] = 0x01;
        assert_eq!(stun_request_ufrag(&response), None);
        assert_eq!(stun_request_ufrag(&[0x80; 100]), None);
        let request = binding_request("relayUfrag:abc");
        assert_eq!(stun_request_ufrag(&request[..request.len() - 8]), None);
        assert_eq!(stun_request_ufrag(&binding_request(":abc")), None);
        assert_eq!(stun_request_ufrag(&[]), None);
    }

    #[test]
    fn an_attribute_longer_than_the_message_is_not_read_past_the_end() {
        let mut request = binding_request("relayUfrag:abc");
        // USERNAME's length field (after the 20-byte header and the 8-byte PRIORITY).
        request[30] = 0xFF;
        assert_eq!(stun_request_ufrag(&request), None);
    }
}
