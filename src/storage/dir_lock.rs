//! The `.lock` file of a log directory, as Kafka keeps one: an exclusive advisory lock
//! (`flock`) held for as long as the broker has the directory open.
//!
//! Two brokers on one `log.dirs` would each assign the same offsets to different records
//! of the same partition; the second one must refuse to start instead. The lock belongs to
//! the open file, so it goes away with the process however that ends (`kill -9` included),
//! and a later start takes it again.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

pub const LOCK_FILE: &str = ".lock";

pub struct DirLock {
    _lock: Flock<File>,
}

impl DirLock {
    /// Takes the lock without waiting; fails with a message naming the directory when
    /// another process (or another broker in this one) holds it.
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(DirLock { _lock: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "log directory {} is in use by another broker (it holds {}); stop that broker or point log.dirs elsewhere",
                    dir.display(),
                    path.display()
                ),
            )),
            Err((_, e)) => Err(io::Error::new(io::Error::from(e).kind(), format!("cannot lock {}: {e}", path.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DirLock;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).err().expect("the directory is locked");
        assert!(err.to_string().contains("in use by another broker"), "{err}");
        drop(first);
        DirLock::acquire(dir.path()).expect("free again once the holder is gone");
    }
}
