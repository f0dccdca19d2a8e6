//! Hands out producer ids for InitProducerId. Ids are reserved in blocks: the end of the
//! current block is written (fsynced) to `producer-id-block` in the log directory before
//! any id of it is used, so ids are never handed out twice, across restarts and crashes
//! (a crash only skips the rest of a block), as Kafka's ProducerIdManager does with blocks
//! from the controller.

use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

const BLOCK: i64 = 1000;
const FILE: &str = "producer-id-block";

pub struct ProducerIdManager {
    path: PathBuf,
    /// (next id, end of the reserved block, exclusive)
    state: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn new(log_dir: &std::path::Path) -> Self {
        ProducerIdManager { path: log_dir.join(FILE), state: Mutex::new((0, 0)) }
    }

    pub fn next_id(&self) -> io::Result<i64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 >= s.1 {
            let start = match std::fs::read_to_string(&self.path) {
                Ok(text) => text.trim().parse::<i64>().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{} is not a number; restore it or remove it to start over", self.path.display()))
                })?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                Err(e) => return Err(e),
            };
            let end = start.checked_add(BLOCK).ok_or_else(|| io::Error::other("producer ids exhausted"))?;
            crate::storage::checkpoint::write_atomically(&self.path, format!("{end}\n").as_bytes())?;
            *s = (start, end);
        }
        let id = s.0;
        s.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProducerIdManager::new(dir.path());
        let first: Vec<i64> = (0..3).map(|_| a.next_id().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        let b = ProducerIdManager::new(dir.path()); // a restart: the rest of the block is skipped
        let next = b.next_id().unwrap();
        assert_eq!(next, BLOCK);
        for _ in 0..BLOCK {
            b.next_id().unwrap();
        }
        assert_eq!(b.next_id().unwrap(), 2 * BLOCK + 1);
    }
}
