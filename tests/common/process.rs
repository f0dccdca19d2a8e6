//! Real `ferrite` processes for tests that crash, corrupt or contend: started on a free
//! 127.0.0.1 port with a data directory of the test's choosing, killed with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ferrite-{tag}-{}-{}", std::process::id(), uuid_like()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn command(dir: &Path, port: u16, overrides: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferrite"));
    c.args(["--data-dir", dir.to_str().unwrap()]);
    c.args(["--override", &format!("listeners=PLAINTEXT://127.0.0.1:{port}")]);
    for (k, v) in overrides {
        c.args(["--override", &format!("{k}={v}")]);
    }
    c
}

/// A broker process; killed (SIGKILL) when dropped.
pub struct Ferrite {
    pub child: Child,
    pub port: u16,
}

impl Ferrite {
    /// Starts a broker and waits until it accepts connections.
    pub fn start(dir: &Path, port: u16, overrides: &[(&str, &str)]) -> Self {
        Self::start_with_env(dir, port, overrides, &[])
    }

    /// `start` with environment variables set for the process.
    pub fn start_with_env(dir: &Path, port: u16, overrides: &[(&str, &str)], env: &[(&str, &str)]) -> Self {
        let f = Self::spawn_with_env(dir, port, overrides, env);
        f.wait_serving();
        f
    }

    /// Starts the process without waiting for it to serve: a node of a cluster serves only
    /// once a majority of its quorum runs.
    pub fn spawn_with_env(dir: &Path, port: u16, overrides: &[(&str, &str)], env: &[(&str, &str)]) -> Self {
        let mut c = command(dir, port, overrides);
        c.envs(env.iter().map(|(k, v)| (*k, *v)));
        // TEST_LOG_DIR=<dir>: each process's log kept there, for a failing test.
        let stderr = match std::env::var("TEST_LOG_DIR") {
            Ok(d) => Stdio::from(std::fs::File::create(Path::new(&d).join(format!("ferrite-{port}.log"))).expect("log file")),
            Err(_) => Stdio::null(),
        };
        let child = c.stdout(Stdio::null()).stderr(stderr).spawn().expect("ferrite starts");
        Ferrite { child, port }
    }

    /// Waits until the broker answers ApiVersions.
    pub fn wait_serving(&self) {
        super::wait_for_broker(&self.bootstrap(), Duration::from_secs(60));
    }

    /// Starts a broker whose open-file limit (soft and hard, as `ulimit -n` sets them) is
    /// `limit`.
    pub fn start_with_fd_limit(dir: &Path, port: u16, overrides: &[(&str, &str)], limit: u64) -> Self {
        use std::os::unix::process::CommandExt;
        let mut c = command(dir, port, overrides);
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            c.pre_exec(move || {
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, limit, limit).map_err(std::io::Error::from)
            });
        }
        let child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("ferrite starts");
        let f = Ferrite { child, port };
        super::wait_for_broker(&f.bootstrap(), Duration::from_secs(60));
        f
    }

    /// Descriptors the process holds (`/proc/<pid>/fd`).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map(|d| d.count()).unwrap_or(0)
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `kill -9` and wait for the process to be gone.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Ferrite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a broker that is expected to refuse to start; returns its exit status and output,
/// failing the test if it is still running after `timeout`.
pub fn run_expecting_exit(dir: &Path, port: u16, overrides: &[(&str, &str)], timeout: Duration) -> Output {
    let mut child = command(dir, port, overrides).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("ferrite starts");
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferrite kept running; it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
