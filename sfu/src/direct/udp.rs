//! The worker's system calls: datagrams read and sent in batches (`recvmmsg`, `sendmmsg`), and
//! the wake-up that ends its wait when a command arrives (an `eventfd` polled with the socket
//! and the worker's other descriptors).
//!
//! Nothing here knows what a datagram carries.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use bytes::BytesMut;

/// Datagrams read in one call at the most.
pub(crate) const BATCH: usize = 32;
/// The largest datagram read whole (browsers keep RTP under ~1,200 bytes; DTLS records too).
const DATAGRAM: usize = 2048;

/// Buffers for one `recvmmsg`: the datagrams and their senders' addresses.
pub(crate) struct RecvBatch {
    bufs: Vec<[u8; DATAGRAM]>,
    names: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
    /// The call's headers, pointed at the buffers above anew before each call.
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

impl RecvBatch {
    pub(crate) fn new() -> RecvBatch {
        RecvBatch {
            bufs: vec![[0; DATAGRAM]; BATCH],
            // SAFETY: an all-zero sockaddr_storage is a valid (unspecified) address.
            names: vec![unsafe { std::mem::zeroed() }; BATCH],
            lens: vec![0; BATCH],
            iovs: Vec::with_capacity(BATCH),
            // SAFETY: zeroed mmsghdr is valid; every pointer is set before a call.
            msgs: vec![unsafe { std::mem::zeroed() }; BATCH],
        }
    }

    /// Reads what is waiting on `socket`, up to `BATCH` datagrams, without blocking; how many.
    pub(crate) fn read(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.iovs.clear();
        self.iovs.extend(self.bufs.iter_mut().map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: DATAGRAM,
        }));
        let msgs = &mut self.msgs;
        for (i, m) in msgs.iter_mut().enumerate() {
            m.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            m.msg_hdr.msg_iov = &mut self.iovs[i];
            m.msg_hdr.msg_iovlen = 1;
            m.msg_len = 0;
        }
        // SAFETY: `msgs` points at BATCH valid headers, buffers and address slots.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (i, m) in msgs.iter().take(n as usize).enumerate() {
            self.lens[i] = m.msg_len as usize;
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last read and who sent it.
    pub(crate) fn get(&self, i: usize) -> (Option<SocketAddr>, &[u8]) {
        (from_storage(&self.names[i]), &self.bufs[i][..self.lens[i]])
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Sends `datagrams` with as few `sendmmsg` calls as it takes; how many were refused (a full
/// socket buffer drops the rest of the batch, as a full network would).
pub(crate) fn send_all(socket: &UdpSocket, datagrams: &[(SocketAddr, BytesMut)]) -> usize {
    let mut refused = 0;
    for chunk in datagrams.chunks(BATCH) {
        let names: Vec<socket2::SockAddr> = chunk
            .iter()
            .map(|(to, _)| socket2::SockAddr::from(*to))
            .collect();
        let mut iovs: Vec<libc::iovec> = chunk
            .iter()
            .map(|(_, d)| libc::iovec {
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            })
            .collect();
        // SAFETY: zeroed mmsghdr is valid; every pointer set below outlives the call.
        let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; chunk.len()];
        for (i, m) in msgs.iter_mut().enumerate() {
            m.msg_hdr.msg_name = names[i].as_ptr() as *mut libc::c_void;
            m.msg_hdr.msg_namelen = names[i].len();
            m.msg_hdr.msg_iov = &mut iovs[i];
            m.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < msgs.len() {
            // SAFETY: the headers from `sent` on are valid and point at live buffers.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    msgs[sent..].as_mut_ptr(),
                    (msgs.len() - sent) as u32,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // One datagram the kernel refuses (an unreachable address) must not hold
                // back the others: skip it and go on, unless the buffer is full.
                if e.kind() == io::ErrorKind::WouldBlock {
                    refused += msgs.len() - sent;
                    break;
                }
                refused += 1;
                sent += 1;
                continue;
            }
            sent += n as usize;
        }
    }
    refused
}

/// What ends the worker's wait early: a command for it.
pub(crate) struct Wake {
    fd: OwnedFd,
}

impl Wake {
    pub(crate) fn new() -> io::Result<Wake> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Wake {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Wakes the worker (from any thread).
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The entries of a wait's descriptors that `wait` fills itself (the wake-up and the socket);
/// the caller's own follow them.
pub(crate) const OWN_FDS: usize = 2;

/// A descriptor to wait for, for reading (and for writing when `write`).
pub(crate) fn pollfd(fd: RawFd, write: bool) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: if write {
            libc::POLLIN | libc::POLLOUT
        } else {
            libc::POLLIN
        },
        revents: 0,
    }
}

/// Waits until `socket` has datagrams, `wake` was rung, one of the caller's descriptors (in
/// `fds` after the first `OWN_FDS`, whose `revents` say what is ready) is ready, or `timeout`
/// passed (rounded up to the millisecond; `None`: no limit).
pub(crate) fn wait(
    fds: &mut [libc::pollfd],
    socket: Option<&UdpSocket>,
    wake: &Wake,
    timeout: Option<Duration>,
) {
    // A negative descriptor is one poll passes over.
    fds[0] = pollfd(wake.raw(), false);
    fds[1] = pollfd(socket.map_or(-1, |s| s.as_raw_fd()), false);
    let ms = timeout.map_or(-1, |t| {
        let us = t.as_micros();
        us.div_ceil(1000).min(i32::MAX as u128) as i32
    });
    // SAFETY: `fds` holds valid pollfd entries.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if fds[0].revents != 0 {
        wake.clear();
    }
}

/// A non-blocking UDP socket on `addr` with room for bursts.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: the kernel caps them at net.core.[rw]mem_max.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_what_several_senders_sent_and_sends_it_back() {
        let relay = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"one", relay.local_addr().unwrap()).unwrap();
        b.send_to(b"two", relay.local_addr().unwrap()).unwrap();
        a.send_to(&[7u8; 1500], relay.local_addr().unwrap())
            .unwrap();
        let wake = Wake::new().unwrap();
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < 3 {
            wait(
                &mut [pollfd(-1, false); OWN_FDS],
                Some(&relay),
                &wake,
                Some(Duration::from_secs(5)),
            );
            let n = batch.read(&relay).unwrap();
            for i in 0..n {
                let (from, d) = batch.get(i);
                got.push((from.unwrap(), d.to_vec()));
            }
        }
        assert_eq!(got[0], (a.local_addr().unwrap(), b"one".to_vec()));
        assert_eq!(got[1], (b.local_addr().unwrap(), b"two".to_vec()));
        assert_eq!(got[2].1.len(), 1500);
        // Nothing left: a read says so instead of blocking.
        assert_eq!(
            batch.read(&relay).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );

        let back: Vec<(SocketAddr, BytesMut)> = got
            .iter()
            .map(|(from, d)| (*from, BytesMut::from(&d[..])))
            .collect();
        assert_eq!(send_all(&relay, &back), 0);
        let mut buf = [0u8; 2048];
        a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 3);
        assert_eq!(b.recv(&mut buf).unwrap(), 3);
        assert_eq!(a.recv(&mut buf).unwrap(), 1500);
    }

    #[test]
    fn a_wake_ends_the_wait_at_once() {
        let socket = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let wake = std::sync::Arc::new(Wake::new().unwrap());
        let w = wake.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            w.wake();
        });
        let start = std::time::Instant::now();
        wait(
            &mut [pollfd(-1, false); OWN_FDS],
            Some(&socket),
            &wake,
            Some(Duration::from_secs(30)),
        );
        assert!(start.elapsed() < Duration::from_secs(10));
        t.join().unwrap();
        // Cleared: the next wait runs to its timeout.
        let start = std::time::Instant::now();
        wait(
            &mut [pollfd(-1, false); OWN_FDS],
            Some(&socket),
            &wake,
            Some(Duration::from_millis(30)),
        );
        assert!(start.elapsed() >= Duration::from_millis(29));
    }
}
