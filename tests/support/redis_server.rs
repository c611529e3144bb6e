//! A real `redis-server` for the fleet tests: on a loopback port, its data (append-only file)
//! in a temporary directory, stopped and restarted on demand, killed on drop.
//!
//! When `redis-server` is missing it is installed with `apt-get` (as root, saying so on
//! stderr); [`RedisServer::start`] returns `None` (and says so loudly) only when that fails.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server, or returns `None` after a loud message when none can be had.
    pub fn start() -> Option<Self> {
        Self::start_with(|_| Vec::new())
    }

    /// Starts a server with more configuration (`--name value...` arguments), made by `extra`
    /// from the server's data directory (for certificate files).
    pub fn start_with(extra: impl FnOnce(&std::path::Path) -> Vec<String>) -> Option<Self> {
        let binary = find_or_install()?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let extra = extra(dir.path());
        let mut server = Self {
            port: free_port(),
            dir,
            child: None,
            extra,
        };
        server.spawn(&binary);
        Some(server)
    }

    /// The data directory (certificate files live there too).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server (its data stays on disk, as after a clean shutdown or a crash with
    /// `appendfsync always`).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, from the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(&find_or_install().expect("redis-server was there a moment ago"));
    }

    fn spawn(&mut self, binary: &PathBuf) {
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pings() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pings(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 64];
        stream.write_all(b"PING\r\n").is_ok()
            && stream
                .read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"])
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file())
}

fn find_or_install() -> Option<PathBuf> {
    if let Some(path) = which("redis-server") {
        return Some(path);
    }
    eprintln!("redis-server is missing: installing it with `apt-get install -y redis-server`");
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if is_root {
        let quiet = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = quiet(&["update"]) && quiet(&["install", "-y", "redis-server"]);
    }
    let found = which("redis-server");
    if found.is_none() {
        eprintln!(
            "\n!!!!!!!! SKIPPING the Redis fleet test: redis-server is not installed and could \
             not be installed (apt-get as root). Install it: apt-get install -y redis-server \
             !!!!!!!!\n"
        );
    }
    found
}
