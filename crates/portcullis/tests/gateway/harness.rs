//! Starts the real parts: the example Express app (node) and the portcullis
//! binary in front of it. Every process is stopped by its own PID on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/express-app")
}

/// What node printed running `script` in `dir` with `input` on its
/// standard input (which the script reads to the end before it answers).
pub fn node_with_input(dir: &Path, script: &str, input: &[u8]) -> Vec<u8> {
    let mut node = Command::new("node")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    node.stdin.take().unwrap().write_all(input).unwrap();
    let output = node.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs `npm ci` in `dir` unless its packages are installed; one install at a
/// time across test processes.
pub fn npm_ci_once(dir: &Path) {
    let lock = std::fs::File::create(std::env::temp_dir().join("portcullis-npm-ci.lock")).unwrap();
    lock.lock().unwrap();
    if !dir.join("node_modules").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
}

/// Reads a child's stdout on a thread, keeping every line for assertions.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn follow(&self, stream: impl Read + Send + 'static) {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lines.0.lock().unwrap().push(line);
            }
        });
    }

    /// Waits up to 10 s for a line containing `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_for_or_explain(needle, &Lines::default())
    }

    /// Like `wait_for`, showing `other` (the process's stderr) if it times out.
    pub fn wait_for_or_explain(&self, needle: &str, other: &Lines) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self.0.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line containing {needle:?} in {:#?}; stderr: {:#?}",
                self.0.lock().unwrap(),
                other.0.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every line so far, joined.
    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    pub fn count(&self, needle: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    pub fn any_contains(&self, needle: &str) -> bool {
        self.0.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// JSON lines of the given `type` (access, event, notice).
    pub fn json(&self, kind: &str) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == kind)
            .collect()
    }
}

pub struct Process {
    pub child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Process {
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (stdout, stderr) = (Lines::default(), Lines::default());
        stdout.follow(child.stdout.take().unwrap());
        stderr.follow(child.stderr.take().unwrap());
        Self { child, stdout, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process {} did not exit within {limit:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds the first `http://127.0.0.1:PORT` or `https://...` in a line.
pub fn address_in(line: &str) -> SocketAddr {
    let start = line.find("://").unwrap() + "://".len();
    let end = line[start..]
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .map_or(line.len(), |e| start + e);
    line[start..end].parse().unwrap()
}

/// The example Express app on a free loopback port.
pub struct ExpressApp {
    pub process: Process,
    pub addr: SocketAddr,
}

impl ExpressApp {
    pub fn start() -> Self {
        npm_ci_once(&app_dir());
        let process = Process::spawn(
            Command::new("node")
                .arg("app.js")
                .current_dir(app_dir())
                .env("PORT", "0")
                .env("HOST", "127.0.0.1")
                .env_remove("NODE_ENV"),
        );
        let addr = address_in(&process.stdout.wait_for_or_explain("listening on", &process.stderr));
        Self { process, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests reached the app, by its own count.
    pub async fn received(&self) -> u64 {
        self.counter("received").await
    }

    /// How many requests reached the app's `/hit`.
    pub async fn hits(&self) -> u64 {
        self.counter("hits").await
    }

    /// One of the app's counters: `GET /NAME` answers `{"NAME": N}`.
    async fn counter(&self, name: &str) -> u64 {
        let counted: serde_json::Value = client()
            .get(format!("{}/{name}", self.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        counted[name].as_u64().unwrap()
    }
}

/// The portcullis binary, run from a config file.
pub struct Gateway {
    pub process: Process,
    pub addr: SocketAddr,
    dir: TempDir,
}

impl Gateway {
    /// Starts the gateway in front of `upstream` with `extra` appended to the config.
    pub fn start(upstream: &str, extra: &str) -> Self {
        Self::start_with_args(upstream, extra, &[])
    }

    /// As [`Gateway::start`], with more command-line arguments.
    pub fn start_with_args(upstream: &str, extra: &str, args: &[&str]) -> Self {
        Self::launch(upstream, extra, "127.0.0.1:0", args)
    }

    /// The gateway on `listen`, configured with `extra`, given `args` too.
    pub fn launch(upstream: &str, extra: &str, listen: &str, args: &[&str]) -> Self {
        let dir = TempDir::new();
        let config = dir.0.join("portcullis.toml");
        std::fs::write(&config, extra).unwrap();
        let process = Process::spawn(
            Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .args(["--upstream", upstream, "--listen", listen, "--config"])
                .arg(&config)
                .args(args),
        );
        let addr = address_in(&process.stdout.wait_for_or_explain("\"listening\"", &process.stderr));
        Self { process, addr, dir }
    }

    /// The gateway as a deployment runs it: from `config` alone, no
    /// command-line overrides. The file stays at [`Gateway::config_path`].
    pub fn from_config(config: &str) -> Self {
        let dir = TempDir::new();
        let path = dir.0.join("portcullis.toml");
        std::fs::write(&path, config).unwrap();
        let process = Process::spawn(
            Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .arg("--config")
                .arg(&path),
        );
        let addr = address_in(&process.stdout.wait_for_or_explain("\"listening\"", &process.stderr));
        Self { process, addr, dir }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.0.join("portcullis.toml")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A real `redis-server` on a free loopback port, with nothing saved to disk.
pub struct RedisServer {
    process: Option<Process>,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = free_port();
        let mut redis = Self { process: None, port };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server by its PID, as an outage would.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }

    /// Starts it again on the same port, empty, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let process = Process::spawn(Command::new("redis-server").args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]));
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.command("PING") != "+PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one inline command; returns the first line of the reply ("" if unreachable).
    pub fn command(&self, command: &str) -> String {
        use std::io::Write;
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.write_all(format!("{command}\r\n").as_bytes());
        let mut line = String::new();
        let _ = std::io::BufReader::new(stream).read_line(&mut line);
        line.trim_end().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port free right now (for servers that must know each other's
/// ports before they start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("portcullis-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A plain HTTP client that never uses a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// As [`client`], with redirects handed back rather than followed.
/// Checks `condition` again and again until it holds; fails saying `never`
/// if it still does not after `limit`.
pub async fn eventually(limit: Duration, never: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < deadline, "{never}");
    }
}

/// `GET url` with a `Cookie` header, redirects not followed.
/// Sends `message` on a WebSocket and returns the next one received, within `limit`.
pub async fn echoed<S>(socket: &mut S, message: Message, limit: Duration) -> Message
where
    S: Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Unpin,
{
    socket.send(message).await.unwrap();
    tokio::time::timeout(limit, socket.next())
        .await
        .expect("no answer in time")
        .expect("the socket closed")
        .unwrap()
}

/// The body of a plain GET of `url`, whatever its status.
pub async fn text_of(url: &str) -> String {
    client().get(url).send().await.unwrap().text().await.unwrap()
}

pub async fn get_with_cookie(url: &str, cookie: &str) -> reqwest::Response {
    let request = client_without_redirects().get(url).header("cookie", cookie);
    request.send().await.unwrap()
}

pub fn client_without_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sends raw bytes and reads until the peer closes or `limit` passes.
pub fn raw_exchange(addr: SocketAddr, request: &[u8], limit: Duration) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}
