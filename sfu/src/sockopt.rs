//! The socket options that `socket2` does not offer (UDP GRO, `SO_TIMESTAMPNS`, `IP_PKTINFO`),
//! set the one way they all take: an int, through `setsockopt`.

use std::io;
use std::os::fd::AsRawFd;

/// Sets the int option `option` of `level` on `socket` to `value`.
pub(crate) fn set_int(
    socket: &impl AsRawFd,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a live descriptor, and an int option value of the size given, from a live int.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
