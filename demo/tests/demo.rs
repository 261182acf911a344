//! The demo end to end, every part real: `phase1-demo` starts the regtest node, the offline
//! wallet, RabbitMQ, the covenant signer and the engine as processes and must pass all eight
//! scenarios; and killing any one of those processes mid-run must fail the demo promptly with
//! that process named, leaving nothing running.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use test_support::{target_dir, workspace_binary, workspace_root};

/// One demo at a time: each starts a whole system.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// The binaries and plugins the demo starts (the workspace build makes the binaries; the
/// plugins and scenario 8's rebuilt component come from demo/build.sh).
fn prepare() -> PathBuf {
    for (pkg, bin) in [("engine", "engine"), ("regtest-node", "regtest-node"), ("covenant-signer", "covenant-signer")] {
        workspace_binary(pkg, bin);
    }
    let status = Command::new("bash")
        .arg(workspace_root().join("demo/build.sh"))
        .arg("--plugins-only")
        .status()
        .expect("running demo/build.sh");
    assert!(status.success(), "demo/build.sh --plugins-only failed");
    target_dir().join("release")
}

struct Run {
    child: Child,
    work: tempfile::TempDir,
    lines: mpsc::Receiver<String>,
    out: Vec<String>,
}

impl Run {
    fn start(args: &[&str]) -> Run {
        let bin_dir = prepare();
        let work = tempfile::Builder::new().prefix("phase1-demo").tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_phase1-demo"))
            .arg("--bin-dir")
            .arg(&bin_dir)
            .arg("--work-dir")
            .arg(work.path().join("run"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        Run { child, work, lines, out: Vec::new() }
    }

    fn logs(&self) -> PathBuf {
        self.work.path().join("run/logs")
    }

    /// Reads output until a line contains `text`.
    fn wait_line(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                let hit = l.contains(text);
                self.out.push(l);
                if hit {
                    return;
                }
            }
        }
        panic!("no line with {text:?} within {timeout:?}; output:\n{}", self.out.join("\n"));
    }

    /// Waits for the exit (failing after `timeout`); the exit code and the whole output.
    fn finish(&mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(300));
                self.out.extend(self.lines.try_iter());
                return (status.code(), self.out.join("\n"));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                self.out.extend(self.lines.try_iter());
                panic!("the demo did not exit within {timeout:?}; output:\n{}", self.out.join("\n"));
            }
            self.out.extend(self.lines.try_iter());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pid(&self, name: &str) -> u32 {
        std::fs::read_to_string(self.logs().join(format!("{name}.pid"))).unwrap().trim().parse().unwrap()
    }

    /// Processes the demo started that are still alive.
    fn survivors(&self) -> Vec<String> {
        let mut alive = Vec::new();
        for e in std::fs::read_dir(self.logs()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_suffix(".pid") {
                let pid = self.pid(n);
                if process_alive(pid) {
                    alive.push(format!("{n} (pid {pid})"));
                }
            }
        }
        let marker = format!("home {}", self.work.path().join("run/rabbitmq").display());
        let vm = Command::new("pgrep").args(["-f", &marker]).output().unwrap();
        if !vm.stdout.is_empty() {
            alive.push(format!("the broker VM ({})", String::from_utf8_lossy(&vm.stdout).trim()));
        }
        alive
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}

fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie (state Z) has exited.
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn require_rabbitmq() {
    assert!(
        Path::new(RABBITMQ_SERVER).is_file(),
        "RabbitMQ is not installed ({RABBITMQ_SERVER} is missing): run `bash scripts/install-deps.sh` and run the tests again"
    );
}

#[test]
fn the_fast_demo_passes_all_eight_scenarios() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    require_rabbitmq();
    let mut run = Run::start(&[]);
    let (code, out) = run.finish(Duration::from_secs(600));
    assert_eq!(code, Some(0), "the demo failed:\n{out}");
    assert!(out.contains("===== All 8 scenarios passed in"), "{out}");
    for n in ["1", "2", "3", "4", "5", "6", "7", "8 (beyond the seed)"] {
        assert!(out.contains(&format!("===== Scenario {n}:")), "scenario {n} did not run:\n{out}");
    }
    assert!(out.contains("RabbitMQ management:"), "{out}");
    let achieved = out.matches("Target metrics achieved!").count();
    assert!(achieved >= 45, "only {achieved} checks passed:\n{out}");
    assert!(!out.contains("FAILED"), "{out}");
    assert_eq!(run.survivors(), Vec::<String>::new(), "processes left running after the demo");
}

#[test]
fn killing_any_process_fails_the_demo_naming_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    require_rabbitmq();
    for (name, what, args) in [
        ("regtest-node", "regtest node", &["--no-rabbitmq"][..]),
        ("offline-wallet", "offline wallet", &["--no-rabbitmq"][..]),
        ("covenant-signer", "covenant signer", &["--no-rabbitmq"][..]),
        ("engine", "engine", &["--no-rabbitmq"][..]),
        ("rabbitmq", "RabbitMQ broker", &[][..]),
    ] {
        let mut run = Run::start(args);
        run.wait_line("===== Scenario 2", Duration::from_secs(300));
        let pid = run.pid(name);
        let killed = Instant::now();
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let (code, out) = run.finish(Duration::from_secs(90));
        let took = killed.elapsed();
        assert_eq!(code, Some(1), "killing the {what}: the demo should fail with status 1:\n{out}");
        assert!(
            out.contains(&format!("demo FAILED: the {what} (pid {pid}) was killed by signal 9")),
            "killing the {what}: the failure should name it:\n{out}"
        );
        assert!(took < Duration::from_secs(60), "killing the {what}: the demo took {took:?} to fail");
        assert_eq!(run.survivors(), Vec::<String>::new(), "killing the {what}: processes left running");
        eprintln!("killed the {what}: the demo failed in {took:?}, naming it");
    }
}

#[test]
fn keep_running_leaves_the_system_up_and_ctrl_c_stops_every_process() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut run = Run::start(&["--no-rabbitmq", "--keep-running"]);
    run.wait_line("The system keeps running", Duration::from_secs(300));
    // The printed API answers while the system stays up.
    let api = run
        .out
        .iter()
        .find_map(|l| l.trim().strip_prefix("Staking API:").map(|r| r.split_whitespace().next().unwrap().to_string()))
        .expect("the demo prints the staking API's URL");
    std::thread::sleep(Duration::from_secs(1));
    let resp = minreq::get(&api).with_timeout(10).send().expect("the API answers after the demo");
    assert_eq!(resp.status_code, 200, "{}", resp.as_str().unwrap_or_default());
    assert!(resp.as_str().unwrap().contains("active_tvl"), "{}", resp.as_str().unwrap());
    unsafe { libc::kill(run.child.id() as i32, libc::SIGINT) };
    let (code, out) = run.finish(Duration::from_secs(60));
    assert_eq!(code, Some(130), "Ctrl-C should end the demo with status 130:\n{out}");
    assert!(out.contains("stopping every process the demo started"), "{out}");
    assert_eq!(run.survivors(), Vec::<String>::new(), "processes left running after Ctrl-C");
}

/// The dashboard in a real browser (issue 8): the demo system stays up (`--keep-running`) and
/// `node --test dashboard/tests/` drives Debian's Chromium through playwright-core against the
/// page the engine serves. Its report (page weight, first render, each check) goes straight to
/// this process's output.
#[test]
fn the_dashboard_works_in_chromium_against_the_demo_system() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = workspace_root();
    assert!(
        Path::new("/usr/bin/chromium").is_file() && root.join("dashboard/node_modules/playwright-core").is_dir(),
        "Chromium or playwright-core is missing: run `bash scripts/install-deps.sh` (apt chromium, npm ci in dashboard/)"
    );
    let mut run = Run::start(&["--no-rabbitmq", "--keep-running"]);
    run.wait_line("The system keeps running", Duration::from_secs(300));
    let url = |label: &str| {
        run.out
            .iter()
            .find_map(|l| l.trim().strip_prefix(label).map(|r| r.split_whitespace().next().unwrap().to_string()))
            .unwrap_or_else(|| panic!("the demo prints {label}"))
    };
    let page = url("Dashboard:");
    let api = page.trim_end_matches('/').to_string();
    let node_rpc = url("Regtest node RPC:").replacen("http://", "http://demo:demo@", 1);
    let status = Command::new("node")
        .args(["--test", "--test-reporter=spec", "tests/"])
        .current_dir(root.join("dashboard"))
        .env("DASHBOARD_API", &api)
        .env("DASHBOARD_PAGE", &page)
        .env("DASHBOARD_REQUIRE_API", "1")
        .env("REGTEST_RPC", &node_rpc)
        .status()
        .expect("running node (install Node.js 18 or later)");
    assert!(status.success(), "the dashboard's browser tests failed ({status}); their output is above");
    unsafe { libc::kill(run.child.id() as i32, libc::SIGINT) };
    let (code, out) = run.finish(Duration::from_secs(60));
    assert_eq!(code, Some(130), "{out}");
}
