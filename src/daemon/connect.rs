//! Connecting to the daemon's socket without waiting on a wedged daemon.
//!
//! A Unix stream `connect` blocks, without any time limit, while the
//! listener's accept queue is full, which is what a stopped or stuck daemon
//! leaves behind once enough clients have tried it. Connecting with
//! `O_NONBLOCK` fails at once with `EAGAIN` instead (a Unix socket connects
//! immediately or not at all), so the client can say so and run embedded.

use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// A connected, blocking stream to `socket`; `WouldBlock` when its accept
/// queue is full.
pub fn connect_without_waiting(socket: &Path) -> std::io::Result<UnixStream> {
    let (address, length) = socket_address(socket)?;
    // SAFETY: socket() takes plain integers and returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let address_ptr = (&address as *const libc::sockaddr_un).cast::<libc::sockaddr>();
    // SAFETY: the address is a valid sockaddr_un of `length` bytes.
    if unsafe { libc::connect(stream.as_raw_fd(), address_ptr, length) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

fn socket_address(socket: &Path) -> std::io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let path = socket.as_os_str().as_bytes();
    if path.len() >= address.sun_path.len() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "socket path too long"));
    }
    for (slot, byte) in address.sun_path.iter_mut().zip(path) {
        *slot = *byte as libc::c_char;
    }
    let length = std::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    Ok((address, length as libc::socklen_t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_to_a_listener_and_says_when_there_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let missing = connect_without_waiting(&path).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let stream = connect_without_waiting(&path).unwrap();
        assert!(stream.peer_addr().is_ok());
    }
}
