//! The processes the demo starts: each in its own process group (a terminal's Ctrl-C reaches
//! the demo, which then stops them in order), with its output in `<logs>/<name>.log`, watched by
//! a monitor thread. Any process that exits while the demo still needs it ends the demo with a
//! message naming it and the tail of its log; nothing waits forever on a dead part.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// One started process.
struct Proc {
    name: String,
    /// What it is, as the user knows it ("covenant signer").
    what: String,
    child: Child,
    log: PathBuf,
    /// Extra pids that belong to it and may outlive its group (the broker's Erlang VM).
    leftovers: Option<String>,
}

/// The set of processes, their monitor and their orderly stop.
#[derive(Clone)]
pub struct Supervisor {
    procs: Arc<Mutex<Vec<Proc>>>,
    stopping: Arc<AtomicBool>,
    logs: PathBuf,
    /// What the demo is doing now (for the message when a process dies).
    doing: Arc<Mutex<String>>,
    /// epmd was not running before the broker started (so the demo stops it too).
    stop_epmd: Arc<AtomicBool>,
}

impl Supervisor {
    /// A supervisor logging to `logs`, with its monitor running.
    pub fn new(logs: &Path) -> Result<Supervisor> {
        std::fs::create_dir_all(logs).with_context(|| format!("creating the log folder {}", logs.display()))?;
        let sup = Supervisor {
            procs: Arc::default(),
            stopping: Arc::default(),
            logs: logs.to_path_buf(),
            doing: Arc::new(Mutex::new("starting".into())),
            stop_epmd: Arc::default(),
        };
        sup.monitor();
        Ok(sup)
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    /// Records what the demo does now ("Scenario 3").
    pub fn doing(&self, what: &str) {
        *self.doing.lock().unwrap() = what.to_string();
    }

    /// Starts `cmd` as `what`, logging to `<logs>/<name>.log`; returns its pid.
    pub fn spawn(&self, name: &str, what: &str, cmd: &mut Command) -> Result<u32> {
        self.spawn_with(name, what, cmd, None)
    }

    /// Like [`Supervisor::spawn`]; `leftovers` is a `pgrep -f` pattern of processes that belong to
    /// it outside its process group (killed at stop).
    pub fn spawn_with(&self, name: &str, what: &str, cmd: &mut Command, leftovers: Option<String>) -> Result<u32> {
        let log = self.log_path(name);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        // Die with the demo even when it is killed outright (no orphans).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting the {what} ({:?})", cmd.get_program()))?;
        let pid = child.id();
        std::fs::write(self.logs.join(format!("{name}.pid")), format!("{pid}\n"))?;
        self.procs.lock().unwrap().push(Proc { name: name.to_string(), what: what.to_string(), child, log, leftovers });
        Ok(pid)
    }

    /// Remembers that the broker's start also started epmd (it is stopped with the rest).
    pub fn owns_epmd(&self) {
        self.stop_epmd.store(true, Ordering::SeqCst);
    }

    /// Watches every process from a thread (see [`Supervisor::fail_if_one_died`]).
    fn monitor(&self) {
        let sup = self.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            if sup.stopping.load(Ordering::SeqCst) {
                return;
            }
            sup.fail_if_one_died();
        });
    }

    /// When a process has exited while the demo runs: prints which one, what the demo was doing
    /// and its log tail, stops the others and exits with status 1. Also called when a step
    /// fails, since a dead part shows first as a refused connection.
    pub fn fail_if_one_died(&self) {
        let died = {
            let mut procs = self.procs.lock().unwrap();
            procs.iter_mut().find_map(|p| match p.child.try_wait() {
                Ok(Some(status)) => Some(died_message(p, status, &self.doing.lock().unwrap())),
                _ => None,
            })
        };
        if let Some(msg) = died {
            if self.stopping.swap(true, Ordering::SeqCst) {
                // Another thread reports it; let it finish and exit.
                std::thread::sleep(Duration::from_secs(3600));
            }
            eprintln!("\n demo FAILED: {msg}");
            self.stop_all();
            std::process::exit(1);
        }
    }

    /// Stops every process, last started first: SIGTERM to its group, then SIGKILL after 15 s.
    /// Idempotent; the monitor stops reporting exits once this begins.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop_all();
    }

    /// True once a stop began (a signal, a failure or the end).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Stops the process started as `name` (one the demo no longer needs).
    pub fn stop_one(&self, name: &str) {
        let p = {
            let mut procs = self.procs.lock().unwrap();
            let i = procs.iter().position(|p| p.name == name);
            i.map(|i| procs.remove(i))
        };
        if let Some(p) = p {
            terminate(p);
        }
    }

    fn stop_all(&self) {
        let mut procs = self.procs.lock().unwrap();
        while let Some(p) = procs.pop() {
            terminate(p);
        }
        if self.stop_epmd.swap(false, Ordering::SeqCst) {
            let _ = Command::new("pkill").args(["-x", "epmd"]).status();
        }
    }
}

/// SIGTERM to the process group, SIGKILL after 15 s, then its leftovers.
fn terminate(mut p: Proc) {
    let pgid = p.child.id() as i32;
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && matches!(p.child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = p.child.wait();
    if let Some(pattern) = &p.leftovers {
        let _ = Command::new("pkill").args(["-KILL", "-f", pattern]).status();
    }
}

fn died_message(p: &Proc, status: ExitStatus, doing: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "exited".to_string(),
    };
    format!(
        "the {} (pid {}) {how} while the demo was {doing}; the demo cannot go on without it.\n \
         Its log is {}; last lines:\n{}",
        p.what,
        p.child.id(),
        p.log.display(),
        tail(&p.log, 15)
    )
}

/// The last `n` lines of a file, indented.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("   | {l}\n")).collect()
}

/// A TCP port on 127.0.0.1: `preferred` when free, else one the system picks.
pub fn port(preferred: u16) -> u16 {
    if preferred != 0 && std::net::TcpListener::bind(("127.0.0.1", preferred)).is_ok() {
        return preferred;
    }
    std::net::TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(preferred)
}

/// Polls `f` every 50 ms until it gives a value, failing after `timeout` with `what` (a dead
/// process ends the demo from the monitor meanwhile).
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            anyhow::bail!("timed out after {:?} waiting for {what}", timeout);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
