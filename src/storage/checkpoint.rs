//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `replication-offset-checkpoint`): a version line, a count
//! line, then `topic partition offset` per line; replaced atomically (write, fsync, rename).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

pub type Offsets = HashMap<(String, i32), i64>;

pub fn read(path: &Path) -> io::Result<Offsets> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Offsets::new()),
        Err(e) => return Err(e),
    };
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("malformed checkpoint file {}", path.display()));
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return Err(bad());
    }
    let count: usize = lines.next().and_then(|l| l.trim().parse().ok()).ok_or_else(bad)?;
    let mut out = Offsets::new();
    for line in lines.take(count) {
        let mut parts = line.split_whitespace();
        let (Some(t), Some(p), Some(o), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        out.insert((t.to_string(), p.parse().map_err(|_| bad())?), o.parse().map_err(|_| bad())?);
    }
    if out.len() != count {
        return Err(bad());
    }
    Ok(out)
}

pub fn write(path: &Path, offsets: &Offsets) -> io::Result<()> {
    let mut entries: Vec<_> = offsets.iter().collect();
    entries.sort();
    let mut text = format!("0\n{}\n", entries.len());
    for ((t, p), o) in entries {
        text.push_str(&format!("{t} {p} {o}\n"));
    }
    write_atomically(path, text.as_bytes())
}

/// Writers of one path take turns: two writers of `path.tmp` at once would write into
/// each other's file and one rename would fail (or, worse, publish the other's half).
/// Paths hash onto a fixed set of locks, so unrelated files rarely wait for each other.
fn path_lock(path: &Path) -> std::sync::MutexGuard<'static, ()> {
    use std::hash::{Hash, Hasher};
    static LOCKS: [std::sync::Mutex<()>; 32] = [const { std::sync::Mutex::new(()) }; 32];
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    LOCKS[(h.finish() % 32) as usize].lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `path.tmp`, fsyncs it, renames it over `path` and fsyncs the directory; one
/// writer of a path at a time.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let _turn = path_lock(path);
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("recovery-point-offset-checkpoint");
        let mut o = Offsets::new();
        o.insert(("a-b.c".into(), 3), 42);
        o.insert(("x".into(), 0), 0);
        write(&p, &o).unwrap();
        assert_eq!(read(&p).unwrap(), o);
        assert!(read(&dir.path().join("missing")).unwrap().is_empty());
        std::fs::write(&p, "0\n2\nx 0 1\n").unwrap();
        assert!(read(&p).is_err());
    }
}
