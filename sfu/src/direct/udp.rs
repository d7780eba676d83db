//! The worker's system calls: datagrams read and sent in batches (`recvmmsg`, `sendmmsg` with
//! each run of datagrams to one address in one message, UDP GSO; on a
//! socket bound to every address, with the address each came to and leaves from, `IP_PKTINFO`;
//! each read with the time the kernel received it, `SO_TIMESTAMPNS`),
//! the machine's addresses, and the wake-up that ends its wait when a command arrives (an
//! `eventfd` polled with the socket and the worker's other descriptors).
//!
//! Nothing here knows what a datagram carries.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;

use crate::sockopt::set_int;

/// Datagrams read in one call at the most.
pub(crate) const BATCH: usize = 32;
/// The largest datagram read whole (browsers keep RTP under ~1,200 bytes; DTLS records too).
const DATAGRAM: usize = 2048;

/// Room for the control messages of one datagram: its destination address (`IP_PKTINFO`, 32
/// bytes) and when it was received (`SCM_TIMESTAMPNS`, 32 bytes), with room to spare.
const CONTROL: usize = 128;

/// Buffers for one `recvmmsg`: the datagrams, their senders' addresses and, on a socket bound to
/// every address (`bind` on `0.0.0.0`), the address each was sent to.
pub(crate) struct RecvBatch {
    bufs: Vec<[u8; DATAGRAM]>,
    names: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
    /// Control messages, as u64s for their alignment.
    controls: Vec<[u64; CONTROL / 8]>,
    dsts: Vec<Option<Ipv4Addr>>,
    /// When the kernel received each datagram (the system clock).
    stamps: Vec<Option<SystemTime>>,
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
            controls: vec![[0; CONTROL / 8]; BATCH],
            dsts: vec![None; BATCH],
            stamps: vec![None; BATCH],
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
            m.msg_hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            m.msg_hdr.msg_controllen = CONTROL as _;
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
            (self.dsts[i], self.stamps[i]) = control_messages(&m.msg_hdr);
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last read, who sent it, and the address it was sent to (known on a
    /// socket bound to every address).
    pub(crate) fn get(&self, i: usize) -> (Option<SocketAddr>, Option<Ipv4Addr>, &[u8]) {
        (
            from_storage(&self.names[i]),
            self.dsts[i],
            &self.bufs[i][..self.lens[i]],
        )
    }

    /// When the kernel received datagrams `which` of the last read, on the system clock (none
    /// for a datagram it did not stamp).
    pub(crate) fn received(&self, which: std::ops::Range<usize>) -> &[Option<SystemTime>] {
        &self.stamps[which]
    }
}

/// What the kernel said of a received datagram: the address it was sent to (`IP_PKTINFO`, on a
/// socket bound to every address) and when it was received (`SCM_TIMESTAMPNS`).
fn control_messages(h: &libc::msghdr) -> (Option<Ipv4Addr>, Option<SystemTime>) {
    let (mut to, mut at) = (None, None);
    // SAFETY: `h` is a header recvmmsg filled: its control buffer holds `msg_controllen` bytes
    // of well-formed control messages, walked with the kernel's own macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>());
                    to = Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)));
                }
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                    let t = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                    at = SystemTime::UNIX_EPOCH
                        .checked_add(Duration::new(t.tv_sec as u64, t.tv_nsec as u32));
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    (to, at)
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

/// A datagram to send: to whom, from which of the machine's addresses (used on a socket bound
/// to every address, so that the answer leaves from the address the browser wrote to), what.
pub(crate) type Outgoing = (SocketAddr, IpAddr, BytesMut);

/// Datagrams one send may carry with UDP segmentation offload: the kernel's limit before 6.11
/// (`UDP_MAX_SEGMENTS`, 128 since).
const GSO_SEGMENTS: usize = 64;
/// Bytes one send may carry with it: a UDP datagram's largest payload, headers left aside.
const GSO_BYTES: usize = 65_000;

/// Where the run of datagrams that can leave in one send starts at `start` ends (UDP GSO):
/// consecutive datagrams to the same address from the same address, all of the first one's
/// size but the last, which may be shorter, at most `max` of them and `GSO_BYTES` in all. A
/// relay's datagrams come in such runs: the packets of one video frame, forwarded to the same
/// person, are cut to one size by the sender, the last one shorter.
fn run_end(datagrams: &[Outgoing], start: usize, max: usize) -> usize {
    let (to, from, first) = &datagrams[start];
    let size = first.len();
    let mut total = size;
    let mut end = start + 1;
    while size > 0 && end < datagrams.len() && end - start < max {
        let (t, f, next) = &datagrams[end];
        if t != to || f != from || next.is_empty() || next.len() > size {
            break;
        }
        if total + next.len() > GSO_BYTES {
            break;
        }
        total += next.len();
        end += 1;
        if next.len() < size {
            break;
        }
    }
    end
}

/// Buffers for `sendmmsg`, kept from one send to the next.
pub(crate) struct SendBatch {
    names: Vec<socket2::SockAddr>,
    iovs: Vec<libc::iovec>,
    controls: Vec<[u64; CONTROL / 8]>,
    msgs: Vec<libc::mmsghdr>,
    /// Where each message's datagrams start in the datagrams sent, and how many it carries.
    runs: Vec<(usize, usize)>,
    /// Datagrams one message may carry: `GSO_SEGMENTS`, or 1 once the kernel refused segmentation
    /// offload (an old kernel, a device without checksum offload).
    segments: usize,
}

impl Default for SendBatch {
    fn default() -> SendBatch {
        SendBatch {
            names: Vec::new(),
            iovs: Vec::new(),
            controls: Vec::new(),
            msgs: Vec::new(),
            runs: Vec::new(),
            segments: GSO_SEGMENTS,
        }
    }
}

// SAFETY: the raw pointers in the buffers are only set and used within `send_all`, on the thread
// that owns the batch.
unsafe impl Send for SendBatch {}

impl SendBatch {
    /// Sends `datagrams` with as few system calls as it takes: up to `BATCH` messages a
    /// `sendmmsg`, each message a run of datagrams to one address that the kernel cuts apart
    /// (UDP GSO, `run_end`), each from its address when `pick_source` (the socket is bound to
    /// every address); how many datagrams were refused (a full socket buffer drops the rest of
    /// the batch, as a full network would). Where the kernel refuses segmentation offload, the
    /// batch and every later one go one datagram a message.
    pub(crate) fn send_all(
        &mut self,
        socket: &UdpSocket,
        datagrams: &[Outgoing],
        pick_source: bool,
    ) -> usize {
        let mut refused = 0;
        let mut start = 0;
        while start < datagrams.len() {
            self.runs.clear();
            let mut end = start;
            while end < datagrams.len() && self.runs.len() < BATCH {
                let run_to = run_end(datagrams, end, self.segments);
                self.runs.push((end, run_to - end));
                end = run_to;
            }
            let chunk = &datagrams[start..end];
            self.iovs.clear();
            self.iovs.extend(chunk.iter().map(|(_, _, d)| libc::iovec {
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            }));
            self.names.clear();
            self.names.extend(
                self.runs
                    .iter()
                    .map(|&(first, _)| socket2::SockAddr::from(datagrams[first].0)),
            );
            self.controls
                .resize(self.runs.len().max(self.controls.len()), [0; CONTROL / 8]);
            self.msgs.clear();
            for (i, &(first, count)) in self.runs.iter().enumerate() {
                let (_, from, d) = &datagrams[first];
                // SAFETY: zeroed mmsghdr is valid; every pointer set here outlives the call.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_name = self.names[i].as_ptr() as *mut libc::c_void;
                m.msg_hdr.msg_namelen = self.names[i].len();
                m.msg_hdr.msg_iov = &mut self.iovs[first - start];
                m.msg_hdr.msg_iovlen = count as _;
                let source = match (pick_source, from) {
                    (true, IpAddr::V4(from)) => Some(*from),
                    _ => None,
                };
                let segment = (count > 1).then_some(d.len() as u16);
                set_controls(&mut m.msg_hdr, &mut self.controls[i], source, segment);
                self.msgs.push(m);
            }
            let mut sent = 0;
            while sent < self.msgs.len() {
                // SAFETY: the headers from `sent` on are valid and point at live buffers.
                let n = unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        self.msgs[sent..].as_mut_ptr(),
                        (self.msgs.len() - sent) as u32,
                        libc::MSG_DONTWAIT,
                    )
                };
                if n > 0 {
                    sent += n as usize;
                    continue;
                }
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // One datagram the kernel refuses (an unreachable address) must not hold back
                // the others: skip it and go on, unless the buffer is full.
                if e.kind() == io::ErrorKind::WouldBlock {
                    refused += self.runs[sent..].iter().map(|r| r.1).sum::<usize>();
                    break;
                }
                let (first, count) = self.runs[sent];
                if count > 1 && refuses_offload(&e) {
                    // The run again, one datagram a message: if that goes, the offload was to
                    // blame, and is not asked for again.
                    let segments = std::mem::replace(&mut self.segments, 1);
                    let lost = self.send_all(socket, &datagrams[first..first + count], pick_source);
                    if lost < count {
                        tracing::info!(
                            error = %e,
                            "UDP segmentation offload refused: media datagrams go one a message"
                        );
                    } else {
                        self.segments = segments;
                    }
                    refused += lost;
                    // That reused the buffers: what follows the run is made up again.
                    end = first + count;
                    break;
                }
                refused += count;
                sent += 1;
            }
            start = end;
        }
        refused
    }
}

/// Whether the kernel refused a send for its segmentation offload (an old kernel, a device or
/// a route that cannot take it), rather than for the address.
fn refuses_offload(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

/// Fills `control` with what the kernel needs for the message of `h`: the address to send
/// from (`IP_PKTINFO`) and the size to cut its datagrams at (`UDP_SEGMENT`), either or both.
fn set_controls(
    h: &mut libc::msghdr,
    control: &mut [u64; CONTROL / 8],
    from: Option<Ipv4Addr>,
    segment: Option<u16>,
) {
    let info_len = std::mem::size_of::<libc::in_pktinfo>() as u32;
    let segment_len = std::mem::size_of::<u16>() as u32;
    // SAFETY: CMSG_SPACE only computes.
    let space = unsafe {
        from.map_or(0, |_| libc::CMSG_SPACE(info_len))
            + segment.map_or(0, |_| libc::CMSG_SPACE(segment_len))
    };
    if space == 0 {
        return;
    }
    // SAFETY: `control` has room for both messages (32 + 24 bytes on 64-bit Linux, below
    // CONTROL) and is aligned for cmsghdr; each header is taken from the one before within
    // `space`.
    unsafe {
        control.fill(0);
        h.msg_control = control.as_mut_ptr().cast();
        h.msg_controllen = space as _;
        let mut c = libc::CMSG_FIRSTHDR(h);
        if let Some(from) = from {
            (*c).cmsg_level = libc::IPPROTO_IP;
            (*c).cmsg_type = libc::IP_PKTINFO;
            (*c).cmsg_len = libc::CMSG_LEN(info_len) as _;
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(from).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>(), info);
            c = libc::CMSG_NXTHDR(h, c);
        }
        if let Some(segment) = segment {
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(segment_len) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), segment);
        }
    }
}

/// The machine's IPv4 addresses on interfaces that are up, for the host candidates of a socket
/// bound to every address: all but loopback, or loopback alone when there is nothing else.
pub(crate) fn host_addresses() -> Vec<Ipv4Addr> {
    let mut found = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, walked while it lives and freed once.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return vec![Ipv4Addr::LOCALHOST];
        }
        let mut i = list;
        while !i.is_null() {
            let a = (*i).ifa_addr;
            let up = (*i).ifa_flags & libc::IFF_UP as u32 != 0;
            if up && !a.is_null() && (*a).sa_family as i32 == libc::AF_INET {
                let sin = &*a.cast::<libc::sockaddr_in>();
                found.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            }
            i = (*i).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    let mut outside: Vec<Ipv4Addr> = found.iter().copied().filter(|a| !a.is_loopback()).collect();
    outside.dedup();
    if outside.is_empty() {
        vec![Ipv4Addr::LOCALHOST]
    } else {
        outside
    }
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
    // When each datagram was received (see `RecvBatch::received`).
    set_int(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
    if addr.ip().is_unspecified() {
        // Which of the machine's addresses each datagram came to (see `RecvBatch::get`).
        set_int(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Asks the kernel to run the calling thread, media worker `n`, before ordinary threads: the
/// lowest real-time priority (`SCHED_RR` 1), within the kernel's cap on real-time time (95 % of
/// each second by default). Under the default scheduler a worker woken by a datagram could wait
/// behind other threads on its core: at 70 rooms, with the relay on a core of its own shared
/// only with the server's other threads and the kernel's loopback delivery, a datagram's
/// 99th-percentile time in the relay was 5.2–14 ms, and 0.73–1.30 ms with this (3 pairs). Where
/// it is not allowed (no `CAP_SYS_NICE` and an `RLIMIT_RTPRIO` of 0: systemd's `LimitRTPRIO=1`
/// and `RestrictRealtime=no` allow it) the worker runs as before, and says so.
pub(crate) fn prefer_this_thread(n: usize) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: pid 0 is the calling thread; `param` is a live, valid sched_param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) } == 0 {
        tracing::info!(
            worker = n,
            "media worker at real-time priority (SCHED_RR 1)"
        );
        return Ok(());
    }
    let e = io::Error::last_os_error();
    tracing::info!(
        worker = n,
        error = %e,
        "media worker at normal priority: allow real-time priority 1 (systemd: LimitRTPRIO=1, \
         RestrictRealtime=no) for steadier media under load"
    );
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_thread_runs_at_real_time_priority_1_or_says_why_not() {
        std::thread::spawn(|| {
            let asked = prefer_this_thread(0);
            // SAFETY: pid 0 is the calling thread.
            let policy = unsafe { libc::sched_getscheduler(0) };
            let mut param = libc::sched_param { sched_priority: -1 };
            // SAFETY: pid 0 is the calling thread; `param` is live.
            unsafe { libc::sched_getparam(0, &mut param) };
            match asked {
                Ok(()) => assert_eq!((policy, param.sched_priority), (libc::SCHED_RR, 1)),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
                    assert_eq!(policy, libc::SCHED_OTHER);
                }
            }
        })
        .join()
        .unwrap();
        // The thread that asked, not the process.
        // SAFETY: pid 0 is the calling thread.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
    }

    #[test]
    fn a_batch_reads_what_several_senders_sent_and_sends_it_back() {
        let relay = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = SystemTime::now();
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
            let after = SystemTime::now();
            for (i, at) in batch.received(0..n).iter().enumerate() {
                let at = at.expect("every datagram has the time it was received");
                assert!(
                    before <= at && at <= after,
                    "{before:?} <= {at:?} <= {after:?}"
                );
                let (from, to, d) = batch.get(i);
                assert_eq!(to, None, "a socket on one address is not told it");
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

        let back: Vec<Outgoing> = got
            .iter()
            .map(|(from, d)| (*from, from.ip(), BytesMut::from(&d[..])))
            .collect();
        assert_eq!(SendBatch::default().send_all(&relay, &back, false), 0);
        let mut buf = [0u8; 2048];
        a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 3);
        assert_eq!(b.recv(&mut buf).unwrap(), 3);
        assert_eq!(a.recv(&mut buf).unwrap(), 1500);
    }

    /// Datagrams of the given sizes to `to` from loopback, each marked with its place in the
    /// whole list (`first` on) so that the receiver can tell them apart.
    fn datagrams(to: SocketAddr, sizes: &[usize], first: usize) -> Vec<Outgoing> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let mark = ((first + i) as u16).to_be_bytes();
                let mut d = BytesMut::from(&vec![mark[1]; size][..]);
                let marked = size.min(2);
                d[..marked].copy_from_slice(&mark[..marked]);
                (to, IpAddr::V4(Ipv4Addr::LOCALHOST), d)
            })
            .collect()
    }

    fn runs(d: &[Outgoing], max: usize) -> Vec<std::ops::Range<usize>> {
        let mut runs = Vec::new();
        let mut start = 0;
        while start < d.len() {
            let end = run_end(d, start, max);
            runs.push(start..end);
            start = end;
        }
        runs
    }

    #[test]
    fn a_frame_to_one_address_is_one_run_and_anything_else_ends_it() {
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        let mut d = datagrams(a, &[1100, 1100, 1100, 750, 1100], 0);
        d.extend(datagrams(b, &[1100, 1100], 5));
        d.extend(datagrams(a, &[1100, 1200, 3, 3], 7));
        // The same address from another of the machine's addresses.
        d.push((
            a,
            "10.0.0.5".parse().unwrap(),
            BytesMut::from(&[0u8; 3][..]),
        ));
        d.extend(datagrams(a, &[0, 0], 12));
        assert_eq!(
            runs(&d, GSO_SEGMENTS),
            // the frame up to its shorter last packet; a packet, then another address; that
            // address's two; a longer packet begins a run; another source; empty ones alone.
            [
                0..4,
                4..5,
                5..7,
                7..8,
                8..10,
                10..11,
                11..12,
                12..13,
                13..14
            ]
        );
        // At most `max` datagrams, and 65,000 bytes, a run.
        assert_eq!(runs(&datagrams(a, &[5; 5], 0), 2), [0..2, 2..4, 4..5]);
        assert_eq!(
            runs(&datagrams(a, &[1100; 60], 0), GSO_SEGMENTS),
            [0..59, 59..60]
        );
        assert_eq!(runs(&d, 1).len(), d.len(), "one a message");
    }

    /// What `socket` receives within a second, in order.
    fn received(socket: &UdpSocket) -> Vec<Vec<u8>> {
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = socket.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    }

    #[test]
    fn runs_leave_one_a_message_and_arrive_as_the_datagrams_they_were() {
        let relay = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut d = datagrams(to_a, &[1100, 1100, 1100, 1100, 1100, 750], 0);
        d.extend(datagrams(to_b, &[3], 6));
        d.extend(datagrams(to_a, &[1100, 1100], 7));
        // More than a run may carry, and more than one `sendmmsg` takes.
        d.extend(datagrams(to_b, &[10; 100], 9));
        let mut out = SendBatch::default();
        assert_eq!(out.send_all(&relay, &d, false), 0);
        assert_eq!(out.segments, GSO_SEGMENTS, "the kernel took the runs");
        let sent_to = |to| -> Vec<Vec<u8>> {
            d.iter()
                .filter(|x| x.0 == to)
                .map(|x| x.2.to_vec())
                .collect()
        };
        assert_eq!(received(&a), sent_to(to_a));
        assert_eq!(received(&b), sent_to(to_b));
    }

    #[test]
    fn a_run_the_kernel_refuses_goes_one_datagram_a_message_from_then_on() {
        let relay = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&a)
            .set_recv_buffer_size(1 << 20)
            .unwrap();
        // 150 datagrams in one message: more than any kernel cuts one into (128 at most).
        let d = datagrams(a.local_addr().unwrap(), &[10; 150], 0);
        let mut out = SendBatch {
            segments: 300,
            ..SendBatch::default()
        };
        assert_eq!(out.send_all(&relay, &d, false), 0, "none lost");
        assert_eq!(out.segments, 1, "no offload asked for again");
        let sent: Vec<Vec<u8>> = d.iter().map(|x| x.2.to_vec()).collect();
        assert_eq!(received(&a), sent);
    }

    #[test]
    fn on_every_address_each_datagram_says_where_it_came_and_the_answer_leaves_from_there() {
        let relay = bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = relay.local_addr().unwrap().port();
        let wake = Wake::new().unwrap();
        let mut batch = RecvBatch::new();
        let mut out = SendBatch::default();
        // Loopback, and the machine's other addresses when it has some.
        let mut addresses = vec![Ipv4Addr::LOCALHOST];
        addresses.extend(host_addresses().into_iter().filter(|a| !a.is_loopback()));
        for ip in addresses {
            let browser = UdpSocket::bind((ip, 0)).unwrap();
            browser.send_to(b"check", (ip, port)).unwrap();
            let (from, to) = loop {
                wait(
                    &mut [pollfd(-1, false); OWN_FDS],
                    Some(&relay),
                    &wake,
                    Some(Duration::from_secs(5)),
                );
                if let Ok(1) = batch.read(&relay) {
                    let (from, to, d) = batch.get(0);
                    assert_eq!(d, b"check");
                    break (from.unwrap(), to);
                }
            };
            assert_eq!(to, Some(ip), "the datagram's destination");
            // A run of three (one message, cut by the kernel), then one more.
            let answer: Vec<Outgoing> = [&b"answer"[..], b"answer", b"ans", b"last"]
                .into_iter()
                .map(|d| (from, IpAddr::V4(ip), BytesMut::from(d)))
                .collect();
            assert_eq!(out.send_all(&relay, &answer, true), 0);
            let mut buf = [0u8; 64];
            browser
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            for expected in &answer {
                let (n, source) = browser.recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], &expected.2[..]);
                assert_eq!(
                    source,
                    SocketAddr::new(IpAddr::V4(ip), port),
                    "left from there"
                );
            }
        }
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
