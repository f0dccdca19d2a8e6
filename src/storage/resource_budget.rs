//! The open-file and memory-map budget of the process, checked before partitions are made.
//!
//! Every partition holds its active segment's `.log` open and, once written, both of its
//! indexes open and mapped: up to three descriptors and two maps. A CreateTopics that
//! would take the process past `ulimit -n` or `vm.max_map_count` used to fail half-way and
//! leave the broker unable to accept connections; it is refused up front instead, with a
//! message naming the limit, and a reserve of descriptors is always left for connections.

use std::io;

/// Descriptors a written partition holds: the active `.log`, `.index` and `.timeindex`.
pub const FDS_PER_PARTITION: u64 = 3;
/// Maps a written partition holds: its active `.index` and `.timeindex`.
pub const MAPS_PER_PARTITION: u64 = 2;
/// Maps left for the allocator, thread stacks and reads of closed segments.
const MAP_RESERVE: u64 = 4096;

/// What the process uses and may use.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub fds_open: u64,
    pub fd_limit: u64,
    pub maps_used: u64,
    pub map_limit: u64,
}

/// Descriptors kept free for accepting connections and rolling segments.
pub fn fd_reserve(fd_limit: u64) -> u64 {
    (fd_limit / 10).clamp(64, 1024)
}

/// Raises the soft open-file limit to the hard one, as the JVM does for Kafka
/// (`-XX:+MaxFDLimit`); returns the limit in effect.
pub fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::debug!(error = %e, soft, hard, "could not raise the open-file limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(_) => u64::MAX,
    }
}

fn count_dir(path: &str) -> io::Result<u64> {
    Ok(std::fs::read_dir(path)?.count() as u64)
}

/// The process's current use and limits, read from `/proc` and `getrlimit`.
pub fn usage() -> io::Result<Usage> {
    use nix::sys::resource::{getrlimit, Resource};
    let (fd_limit, _) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    let maps = std::fs::read("/proc/self/maps")?;
    let map_limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX);
    Ok(Usage {
        fds_open: count_dir("/proc/self/fd")?,
        fd_limit,
        maps_used: maps.iter().filter(|&&b| b == b'\n').count() as u64,
        map_limit,
    })
}

/// Whether `partitions` more partitions fit; otherwise what to change, for the client.
/// `unopened` counts the indexes of existing partitions' active segments not opened yet:
/// each will take a descriptor and a map at its partition's first written kilobytes.
pub fn check(usage: &Usage, unopened: u64, partitions: u64) -> Result<(), String> {
    let fds = partitions.saturating_mul(FDS_PER_PARTITION);
    let reserve = fd_reserve(usage.fd_limit);
    let committed = usage.fds_open.saturating_add(unopened);
    if committed.saturating_add(fds).saturating_add(reserve) > usage.fd_limit {
        return Err(format!(
            "{partitions} more partitions need up to {fds} open files ({FDS_PER_PARTITION} each), but the broker's \
             open-file limit (ulimit -n) is {} with {committed} in use or promised to existing partitions \
             and {reserve} kept for connections; raise the open-file limit of the broker (ulimit -n, \
             systemd LimitNOFILE) or create fewer partitions",
            usage.fd_limit
        ));
    }
    let maps = partitions.saturating_mul(MAPS_PER_PARTITION);
    let committed = usage.maps_used.saturating_add(unopened);
    if committed.saturating_add(maps).saturating_add(MAP_RESERVE) > usage.map_limit {
        return Err(format!(
            "{partitions} more partitions need up to {maps} memory maps ({MAPS_PER_PARTITION} each), but \
             vm.max_map_count is {} with {committed} in use or promised to existing partitions and \
             {MAP_RESERVE} kept for the process; raise vm.max_map_count (sysctl) or create fewer partitions",
            usage.map_limit
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(fds_open: u64, fd_limit: u64, maps_used: u64, map_limit: u64) -> Usage {
        Usage { fds_open, fd_limit, maps_used, map_limit }
    }

    #[test]
    fn partitions_fit_while_the_reserve_stays_free() {
        // 1,024 descriptors: a reserve of 102; 100 open leaves room for 274 partitions.
        assert!(check(&usage(100, 1024, 100, 65530), 0, 274).is_ok());
        let e = check(&usage(100, 1024, 100, 65530), 0, 275).unwrap_err();
        assert!(e.contains("open-file limit (ulimit -n) is 1024"), "{e}");
        // Existing partitions' unopened indexes count as taken.
        assert!(check(&usage(100, 1024, 100, 65530), 3, 273).is_ok());
        assert!(check(&usage(100, 1024, 100, 65530), 4, 273).is_err());
        assert_eq!(fd_reserve(200), 64);
        assert_eq!(fd_reserve(1 << 20), 1024);
    }

    #[test]
    fn maps_are_checked_against_vm_max_map_count() {
        assert!(check(&usage(10, 1 << 20, 1000, 65530), 0, 30_000).is_ok());
        let e = check(&usage(10, 1 << 20, 1000, 65530), 0, 31_000).unwrap_err();
        assert!(e.contains("vm.max_map_count is 65530"), "{e}");
    }

    #[test]
    fn huge_requests_do_not_overflow() {
        assert!(check(&usage(10, 1 << 20, 10, 1 << 20), 0, u64::MAX).is_err());
    }

    #[test]
    fn this_process_reads_its_own_usage() {
        let u = super::usage().unwrap();
        assert!(u.fds_open >= 3 && u.fd_limit >= u.fds_open && u.maps_used > 0, "{u:?}");
    }
}
