//! Reading a file named by a setting, bounded in kind, size and time. The file is opened
//! non-blocking (a FIFO never blocks the open), must be a regular file, and is read up to a cap;
//! the read runs on its own thread, so a stalled mount (NFS, EFS, FUSE) holds that thread, never
//! the caller, which awaits it under its own deadline. Contents are wiped on drop.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug)]
pub enum ReadError {
    /// Not a regular file: a FIFO, a device, a directory, a socket (its kind in words).
    NotRegular(&'static str),
    /// Larger than the cap (the cap).
    TooLarge(usize),
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotRegular(kind) => write!(f, "it is a {kind}, not a regular file"),
            ReadError::TooLarge(cap) => write!(f, "it is larger than {cap} bytes"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "FIFO"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Reads `path` on the calling thread: `Ok(None)` when it does not exist.
pub fn read_now(path: &Path, cap: usize) -> Result<Option<Zeroizing<Vec<u8>>>, ReadError> {
    let file = match File::options()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    };
    let meta = file.metadata().map_err(ReadError::Io)?;
    // `AWS_CONFIG_FILE=/dev/null` is the usual way to say "no config file" (the AWS CLI reads
    // it as empty); it is the one device that is known to end at once, so it reads as empty.
    if meta.file_type().is_char_device() && meta.rdev() == nix::libc::makedev(1, 3) {
        return Ok(Some(Zeroizing::new(Vec::new())));
    }
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind(meta.file_type())));
    }
    if meta.len() > cap as u64 {
        return Err(ReadError::TooLarge(cap));
    }
    // Sized once from the length (plus one byte to see growth); `take` bounds a file that grows.
    let mut buf = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(ReadError::Io)?;
    if buf.len() > cap {
        return Err(ReadError::TooLarge(cap));
    }
    Ok(Some(buf))
}

/// Reads `path` on a thread of its own; the caller bounds the wait. A thread that answered is
/// joined (it has nothing left to do but return), so none lingers once the read is done; one
/// stuck in the kernel is left behind when the caller gives up.
pub async fn read(path: PathBuf, cap: usize) -> Result<Option<Zeroizing<Vec<u8>>>, ReadError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = crate::signals::spawn("file-read", move || {
        let _ = tx.send(read_now(&path, cap));
    })
    .map_err(ReadError::Io)?;
    let result = rx.await;
    let _ = thread.join();
    result.unwrap_or_else(|_| {
        Err(ReadError::Io(std::io::Error::other(
            "the reading thread ended",
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_sizes_and_missing() {
        let dir = crate::scratch::Scratch::new("bounded-read");
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR).unwrap();
        let big = dir.file("big", [0u8; 11]);
        let ok = dir.file("ok", b"[default]\n");

        assert!(matches!(
            read_now(&fifo, 10),
            Err(ReadError::NotRegular("FIFO"))
        ));
        assert!(matches!(
            read_now(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular("character device"))
        ));
        assert!(matches!(
            read_now(dir.path(), 10),
            Err(ReadError::NotRegular("directory"))
        ));
        assert!(
            read_now(Path::new("/dev/null"), 10)
                .unwrap()
                .unwrap()
                .is_empty()
        );
        assert!(matches!(read_now(&big, 10), Err(ReadError::TooLarge(10))));
        assert!(matches!(read_now(&dir.join("none"), 10), Ok(None)));
        assert_eq!(
            read_now(&ok, 10).unwrap().unwrap().as_slice(),
            b"[default]\n"
        );
    }
}
