//! The real binary in a sandbox: a temporary folder that is HOME, holds the XDG folders and
//! TMPDIR, and is the working folder, with `./config/tokenwatch.yaml`; an empty environment
//! but for those (and PATH).

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Longest wait for a whole run of the binary.
pub const RUN_LIMIT: Duration = Duration::from_secs(90);
/// Longest wait for one step of a running binary: a line of output, its exit.
pub const STEP: Duration = Duration::from_secs(30);

/// The tokenwatch binary.
/// A faked clock the suite runs under (`faketime … cargo test`: libfaketime's `LD_PRELOAD`
/// and `FAKETIME*`) reaches every process the tests start, which otherwise clear their
/// environment: the whole suite then runs at the same faked time.
pub fn clock_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k == "LD_PRELOAD" || k.starts_with("FAKETIME"))
        .collect()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tokenwatch")
}

/// The permission bits of `p` (following a symlink).
pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("metadata of {}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `text` quoted for `sh`.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The access token stored at `path`, if it reads as a token file.
pub fn stored_token(path: &Path) -> Option<String> {
    tokenwatch::token::read_token_file(path)
        .ok()
        .flatten()
        .map(|t| t.access_token.expose().to_owned())
}

/// What a finished process said.
#[derive(Debug)]
pub struct Out {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The clock just before the start and just after the end.
    pub before: DateTime<Utc>,
    pub after: DateTime<Utc>,
}

impl Out {
    /// stdout, a newline, stderr.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// stdout or stderr holds `needle`; the test fails with all the output otherwise.
    pub fn assert_says(&self, needle: &str) {
        assert!(
            self.all().contains(needle),
            "no {needle:?} in the output:\n{}",
            self.all()
        );
    }

    /// stdout holds `needle`; the test fails with all the output otherwise.
    pub fn assert_stdout(&self, needle: &str) {
        assert!(
            self.stdout.contains(needle),
            "no {needle:?} on stdout:\n{}",
            self.all()
        );
    }

    /// stderr holds `needle`; the test fails with all the output otherwise.
    pub fn assert_stderr(&self, needle: &str) {
        assert!(
            self.stderr.contains(needle),
            "no {needle:?} on stderr:\n{}",
            self.all()
        );
    }

    /// stdout does not hold `needle`; the test fails with all the output otherwise.
    pub fn assert_not_on_stdout(&self, needle: &str) {
        assert!(
            !self.stdout.contains(needle),
            "{needle:?} on stdout:\n{}",
            self.all()
        );
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    pub fn yaml(&self) -> serde_yaml::Value {
        serde_yaml::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not YAML ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Bytes as text: strictly UTF-8 when `strict` (the test fails otherwise), else lossily.
fn text_of(bytes: Vec<u8>, strict: bool, what: &str) -> String {
    if strict {
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("{what} is not UTF-8: {e}"))
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Run `cmd` to the end with stdout and stderr captured; killed (and the test failed) after
/// `limit`.
pub fn output_of(mut cmd: Command, limit: Duration, strict_utf8: bool) -> Out {
    let what = format!("{cmd:?}");
    let before = Utc::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    let readers = pipes.map(|pipe| std::thread::spawn(move || read_all(pipe)));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let after = Utc::now();
    let [stdout, stderr] = readers.map(|r| r.join().unwrap());
    Out {
        code: status.code(),
        stdout: text_of(stdout, strict_utf8, "stdout"),
        stderr: text_of(stderr, strict_utf8, "stderr"),
        before,
        after,
    }
}

fn read_all(mut pipe: Box<dyn Read + Send>) -> Vec<u8> {
    let mut s = Vec::new();
    let _ = pipe.read_to_end(&mut s);
    s
}

/// A temporary HOME, XDG folders, TMPDIR and working folder with `./config/`.
pub struct Sandbox {
    _dir: tempfile::TempDir,
    /// The folder, symlinks resolved (the binary sees its working folder through getcwd()).
    pub root: PathBuf,
    /// The binary's whole environment.
    pub env: Vec<(String, String)>,
    /// The token file the config names: `config/upstox_token.json` unless a test says
    /// otherwise.
    pub token: PathBuf,
    strict_utf8: bool,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox::in_dir(tempfile::tempdir().unwrap())
    }

    /// A sandbox whose folder's name starts with `prefix`.
    pub fn named(prefix: &str) -> Sandbox {
        Sandbox::in_dir(tempfile::Builder::new().prefix(prefix).tempdir().unwrap())
    }

    /// A sandbox on the build's disk rather than a tmpfs, so fsync does real work there.
    pub fn on_disk(prefix: &str) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        Sandbox::in_dir(dir)
    }

    fn in_dir(dir: tempfile::TempDir) -> Sandbox {
        let root = dir.path().canonicalize().unwrap();
        for d in ["config", "home", "xdg-config", "tmp"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let at = |p: &str| root.join(p).display().to_string();
        let env: Vec<(String, String)> = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), at("home")),
            ("XDG_CONFIG_HOME".into(), at("xdg-config")),
            // Not made here: tokenwatch makes its state folder itself.
            ("XDG_STATE_HOME".into(), at("xdg-state")),
            ("TMPDIR".into(), at("tmp")),
        ];
        let env = env.into_iter().chain(clock_env()).collect();
        Sandbox {
            _dir: dir,
            token: root.join("config/upstox_token.json"),
            root,
            env,
            strict_utf8: false,
        }
    }

    /// Fail a run whose output is not UTF-8 (by default it is read lossily).
    pub fn strict_utf8(mut self) -> Sandbox {
        self.strict_utf8 = true;
        self
    }

    /// Set a variable of the binary's environment.
    pub fn set_env(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config/tokenwatch.yaml")
    }

    /// Write `config` (JSON is YAML) as the config file.
    pub fn write_config(&self, config: &Value) {
        self.write_yaml(&serde_json::to_string_pretty(config).unwrap());
    }

    pub fn write_yaml(&self, yaml: &str) {
        std::fs::write(self.config_path(), yaml).unwrap();
    }

    pub fn token_path(&self) -> PathBuf {
        self.token.clone()
    }

    pub fn write_token(&self, contents: impl AsRef<[u8]>) {
        std::fs::write(&self.token, contents).unwrap();
    }

    /// Write `contents` to `rel` (folders made as needed); its path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// The stored access token, if any.
    pub fn stored(&self) -> Option<String> {
        stored_token(&self.token)
    }

    /// The environment the library's config loader gets: HOME in the sandbox.
    pub fn lib_env(&self) -> tokenwatch::paths::Env {
        tokenwatch::paths::Env::from([("HOME".to_string(), self.home().display().to_string())])
    }

    /// The binary with `args`, isolated, in the sandbox, stdin closed.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.root)
            .stdin(Stdio::null());
        c
    }

    /// Run the binary to the end.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, &[])
    }

    /// Run the binary to the end with more environment variables.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = self.cmd(args);
        c.envs(env.iter().copied());
        output_of(c, RUN_LIMIT, self.strict_utf8)
    }

    /// [`Sandbox::run`] off the runtime's threads (the binary may call a simulator that runs
    /// on them).
    pub async fn run_async(&self, args: &[&str]) -> Out {
        let (c, strict) = (self.cmd(args), self.strict_utf8);
        tokio::task::spawn_blocking(move || output_of(c, RUN_LIMIT, strict))
            .await
            .unwrap()
    }

    /// Start the binary with stdin, stdout and stderr piped.
    pub fn spawn(&self, args: &[&str]) -> Running {
        Running::new(
            self.cmd(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    }
}

/// A sandbox for the library's config loader, and the environment the loader gets: HOME in
/// the sandbox, and what a test adds.
pub struct ConfigEnv {
    pub sb: Sandbox,
    pub env: tokenwatch::paths::Env,
}

impl ConfigEnv {
    pub fn new() -> ConfigEnv {
        let sb = Sandbox::new();
        let env = sb.lib_env();
        ConfigEnv { sb, env }
    }

    /// Set a variable of the loader's environment.
    pub fn set(&mut self, key: &str, value: &str) -> &mut ConfigEnv {
        self.env.insert(key.into(), value.into());
        self
    }
}

/// Kills a child that is still running when the test panics.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running process: stdout lines on a channel, stderr collected, killed on drop.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Take over `child`, whose stdout and stderr are piped (stdin may be).
    pub fn new(mut child: Child) -> Running {
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Running {
            child,
            stdin,
            lines,
            stdout: Vec::new(),
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Read stdout until a line containing `needle`.
    pub fn line_with(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no {needle:?} on stdout: {:#?}\nstderr: {}",
                    self.stdout,
                    self.stderr()
                ),
            }
        }
    }

    /// Wait until stderr holds `needle`; stderr then.
    pub fn stderr_with(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let ended = !self.running();
            if ended {
                // What it wrote last may still be on its way from the reader thread.
                std::thread::sleep(Duration::from_millis(100));
            }
            let err = self.stderr();
            if err.contains(needle) {
                return err;
            }
            assert!(
                !ended,
                "the process ended without {needle:?} on stderr:\n{err}"
            );
            assert!(Instant::now() < deadline, "no {needle:?} on stderr:\n{err}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Wait for the exit; everything it printed.
    pub fn finish(mut self) -> Out {
        let deadline = Instant::now() + STEP;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit: {:#?}\n{}",
                self.stdout,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(self.stdin.take());
        // The reader threads end with the pipes.
        std::thread::sleep(Duration::from_millis(100));
        self.stdout.extend(self.lines.try_iter());
        let now = Utc::now();
        Out {
            code: status.code(),
            stdout: self.stdout.join("\n"),
            stderr: self.stderr(),
            before: now,
            after: now,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
