//! ICE over TCP for one worker (RFC 6544, the relay's candidate passive; RFC 4571 framing):
//! its listener, the streams browsers open to it, their frames in and out. For a browser whose
//! network lets no UDP through.
//!
//! Everything is non-blocking: the worker polls the descriptors named by `poll_fds` with its
//! own, then calls `accept`, `read` and `write_pending` for what is ready. A stream is known by
//! the browser's address. Nothing here knows what a frame carries.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use rtc::shared::tcp_framing::{frame_packet, TcpFrameDecoder};

use super::udp::pollfd;

/// Streams open at once; more are refused at accept (a flood of connections stops here).
const MAX_STREAMS: usize = 256;
/// How long a stream may stay without a connection taking it (its first STUN request).
const FIRST_FRAME: Duration = Duration::from_secs(10);
/// Bytes waiting for a slow stream; past it, frames are dropped as a congested UDP path would.
const MAX_PENDING: usize = 1 << 20;

struct Stream {
    sock: TcpStream,
    /// The address the browser connected to (one of the machine's, on a listener on all).
    local: SocketAddr,
    frames: TcpFrameDecoder,
    /// Framed bytes the socket did not take yet.
    pending: Vec<u8>,
    opened: Instant,
    /// A connection took its last frame.
    routed: bool,
    readable: bool,
    writable: bool,
}

pub(crate) struct Tcp {
    listener: TcpListener,
    local: SocketAddr,
    streams: HashMap<SocketAddr, Stream>,
    /// The streams in the order `poll_fds` named them (after the listener).
    polled: Vec<SocketAddr>,
    listener_ready: bool,
}

impl Tcp {
    /// A non-blocking listener on `addr`.
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Tcp> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Tcp {
            local: listener.local_addr()?,
            listener,
            streams: HashMap::new(),
            polled: Vec::new(),
            listener_ready: false,
        })
    }

    pub(crate) fn local(&self) -> SocketAddr {
        self.local
    }

    /// Appends the listener's and every stream's descriptor to `fds`.
    pub(crate) fn poll_fds(&mut self, fds: &mut Vec<libc::pollfd>) {
        fds.push(pollfd(self.listener.as_raw_fd(), false));
        self.polled.clear();
        for (addr, s) in &self.streams {
            fds.push(pollfd(s.sock.as_raw_fd(), !s.pending.is_empty()));
            self.polled.push(*addr);
        }
    }

    /// Notes what `poll` found ready in the entries `poll_fds` appended.
    pub(crate) fn polled(&mut self, fds: &[libc::pollfd]) {
        let Some((listener, streams)) = fds.split_first() else {
            return;
        };
        self.listener_ready |= listener.revents != 0;
        for (fd, addr) in streams.iter().zip(&self.polled) {
            if let Some(s) = self.streams.get_mut(addr) {
                s.readable |= fd.revents & !libc::POLLOUT != 0;
                s.writable |= fd.revents & libc::POLLOUT != 0;
            }
        }
    }

    /// Takes the streams waiting at the listener, closes those no connection took in time.
    pub(crate) fn accept(&mut self, now: Instant) {
        self.streams
            .retain(|_, s| s.routed || now.duration_since(s.opened) < FIRST_FRAME);
        if !std::mem::take(&mut self.listener_ready) {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((sock, from)) => {
                    if self.streams.len() >= MAX_STREAMS || sock.set_nonblocking(true).is_err() {
                        continue; // dropped: closed
                    }
                    let _ = sock.set_nodelay(true);
                    let local = sock.local_addr().unwrap_or(self.local);
                    self.streams.insert(
                        from,
                        Stream {
                            sock,
                            local,
                            frames: TcpFrameDecoder::new(),
                            pending: Vec::new(),
                            opened: now,
                            routed: false,
                            // Data may have come with the connection.
                            readable: true,
                            writable: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return, // WouldBlock, or out of descriptors: next time
            }
        }
    }

    /// Reads every ready stream and gives each whole frame to `frame`, with its sender and the
    /// address it came to; the answer says whether a connection took it. A stream that ended
    /// or failed is closed.
    pub(crate) fn read(&mut self, mut frame: impl FnMut(SocketAddr, SocketAddr, &[u8]) -> bool) {
        let mut buf = [0u8; 16 * 1024];
        let mut closed = Vec::new();
        for (addr, s) in self.streams.iter_mut() {
            if !std::mem::take(&mut s.readable) {
                continue;
            }
            loop {
                match s.sock.read(&mut buf) {
                    Ok(0) => {
                        closed.push(*addr);
                        break;
                    }
                    Ok(n) => {
                        s.frames.extend_from_slice(&buf[..n]);
                        while let Some(f) = s.frames.next_packet() {
                            // A stream whose connection is gone is closed like a stray one.
                            s.routed = frame(*addr, s.local, &f);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed.push(*addr);
                        break;
                    }
                }
            }
        }
        for a in closed {
            self.streams.remove(&a);
        }
    }

    /// Sends `payload` as one frame on the stream from `to`, if there is one.
    pub(crate) fn send(&mut self, to: SocketAddr, payload: &[u8]) {
        let Some(s) = self.streams.get_mut(&to) else {
            return;
        };
        if s.pending.len() + payload.len() > MAX_PENDING {
            return;
        }
        s.pending.extend_from_slice(&frame_packet(payload));
        s.writable = true;
    }

    /// Writes what the streams have pending, as far as their sockets take it.
    pub(crate) fn write_pending(&mut self) {
        let mut closed = Vec::new();
        for (addr, s) in self.streams.iter_mut() {
            if !std::mem::take(&mut s.writable) || s.pending.is_empty() {
                continue;
            }
            let mut sent = 0;
            while sent < s.pending.len() {
                match s.sock.write(&s.pending[sent..]) {
                    Ok(0) => break,
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed.push(*addr);
                        break;
                    }
                }
            }
            s.pending.drain(..sent);
        }
        for a in closed {
            self.streams.remove(&a);
        }
    }

    /// Closes the stream from `addr`.
    pub(crate) fn close(&mut self, addr: SocketAddr) {
        self.streams.remove(&addr);
    }

    #[cfg(test)]
    pub(crate) fn streams(&self) -> usize {
        self.streams.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(t: &mut Tcp, frames: &mut Vec<(SocketAddr, Vec<u8>)>, take: bool) {
        let t_local = t.local();
        let mut fds = Vec::new();
        t.poll_fds(&mut fds);
        // SAFETY: valid pollfd entries.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 200) };
        t.polled(&fds);
        t.accept(Instant::now());
        t.read(|from, local, f| {
            assert_eq!(local, t_local, "the stream's own address");
            frames.push((from, f.to_vec()));
            take
        });
        t.write_pending();
    }

    #[test]
    fn frames_in_pieces_come_out_whole_and_answers_go_back_framed() {
        let mut t = Tcp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut browser = TcpStream::connect(t.local()).unwrap();
        let mut frames = Vec::new();
        turn(&mut t, &mut frames, true);
        // One frame split across writes, then two in one write.
        browser.write_all(&[0, 5, b'h', b'e']).unwrap();
        turn(&mut t, &mut frames, true);
        browser
            .write_all(&[b'l', b'l', b'o', 0, 1, b'!', 0, 0])
            .unwrap();
        while frames.len() < 3 {
            turn(&mut t, &mut frames, true);
        }
        let me = browser.local_addr().unwrap();
        let got: Vec<&[u8]> = frames.iter().map(|(_, f)| f.as_slice()).collect();
        assert_eq!(got, vec![&b"hello"[..], b"!", b""]);
        assert!(frames.iter().all(|(from, _)| *from == me));

        t.send(me, b"answer");
        t.send("127.0.0.1:9".parse().unwrap(), b"nobody"); // no such stream: dropped
        t.write_pending();
        let mut back = [0u8; 8];
        browser.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"\0\x06answer");
    }

    #[test]
    fn a_stream_nobody_takes_is_closed_and_an_ended_one_forgotten() {
        let mut t = Tcp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut junk = TcpStream::connect(t.local()).unwrap();
        let ended = TcpStream::connect(t.local()).unwrap();
        let mut frames = Vec::new();
        while t.streams() < 2 {
            turn(&mut t, &mut frames, false);
        }
        junk.write_all(&[0, 3, 1, 2, 3]).unwrap();
        drop(ended);
        while t.streams() > 1 || frames.is_empty() {
            turn(&mut t, &mut frames, false);
        }
        // Not taken by any connection: closed once its time is up.
        t.accept(Instant::now() + FIRST_FRAME);
        assert_eq!(t.streams(), 0);
        let mut b = [0u8; 1];
        assert_eq!(junk.read(&mut b).unwrap_or(0), 0, "closed by the relay");
    }

    #[test]
    fn a_flood_of_streams_stops_at_the_limit_and_a_reader_that_never_reads_is_not_queued_past_its_cap(
    ) {
        let mut t = Tcp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut frames = Vec::new();
        let mut flood = Vec::new();
        for i in 0..MAX_STREAMS + 20 {
            flood.push(TcpStream::connect(t.local()).unwrap());
            // Taken as they come, as the worker's loop does (the listen queue is short).
            if i % 32 == 31 {
                turn(&mut t, &mut frames, true);
            }
        }
        for _ in 0..3 {
            turn(&mut t, &mut frames, true);
        }
        assert_eq!(
            t.streams(),
            MAX_STREAMS,
            "the streams past the limit are closed"
        );
        drop(flood);
        while t.streams() > 0 {
            turn(&mut t, &mut frames, true);
        }

        // A browser that stops reading: what waits for it stays under MAX_PENDING.
        let silent = TcpStream::connect(t.local()).unwrap();
        while t.streams() == 0 {
            turn(&mut t, &mut frames, true);
        }
        let me = silent.local_addr().unwrap();
        // Far more than the kernel's socket buffers hold, so that the cap is what stops it.
        for _ in 0..(16 * MAX_PENDING / 1200) {
            t.send(me, &[0u8; 1200]);
            t.write_pending();
        }
        let waiting: usize = t.streams.values().map(|s| s.pending.len()).sum();
        assert!(waiting <= MAX_PENDING, "{waiting} bytes waiting");
        assert_eq!(t.streams(), 1, "the slow stream itself stays");
    }
}
