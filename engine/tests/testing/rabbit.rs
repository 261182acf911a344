//! A real RabbitMQ broker for the acceptance tests: a private node (its own node name, AMQP and
//! distribution ports, mnesia and log dirs, Erlang cookie) that can be stopped and started again
//! on the same data, plus small AMQP helpers (drain a queue, passive declares) built on lapin.
//!
//! The broker runs `/usr/lib/rabbitmq/bin/rabbitmq-server` directly (the `/usr/sbin` wrapper
//! switches to the `rabbitmq` user). CI installs it with `bash scripts/install-deps.sh`; the
//! tests fail (never skip) when it is missing.

use super::{free_port, tail, wait_until};
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
pub const RABBITMQCTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// How long a broker may take to accept AMQP connections after its start.
pub const BROKER_START_TIMEOUT: Duration = Duration::from_secs(90);

static BROKER_SEQ: AtomicU32 = AtomicU32::new(0);

/// A private RabbitMQ node. Dropping it kills the node (process group and `beam.smp`).
pub struct Broker {
    /// `<unique>@localhost`
    pub node: String,
    pub port: u16,
    pub dist_port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    _tmp: tempfile::TempDir,
}

/// Fails the test with what to do when RabbitMQ is not installed.
pub fn require_rabbitmq() {
    for bin in [RABBITMQ_SERVER, RABBITMQCTL] {
        assert!(
            Path::new(bin).is_file(),
            "RabbitMQ is not installed ({bin} is missing): run `bash scripts/install-deps.sh` \
             (installs the Debian package rabbitmq-server) and run the tests again"
        );
    }
}

impl Broker {
    /// Starts a fresh node and waits until it accepts AMQP connections.
    pub fn start() -> Broker {
        require_rabbitmq();
        let tmp = tempfile::Builder::new().prefix("acceptance-rabbit").tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let node = format!(
            "acc{}x{}x{}@localhost",
            std::process::id(),
            BROKER_SEQ.fetch_add(1, Ordering::Relaxed),
            nanos % 1_000_000
        );
        let port = free_port();
        let mut dist_port = free_port();
        while dist_port == port {
            dist_port = free_port();
        }
        std::fs::create_dir_all(dir.join("mnesia")).unwrap();
        std::fs::create_dir_all(dir.join("log")).unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(dir.join("rabbitmq.conf"), format!("listeners.tcp.default = {port}\nloopback_users = none\n"))
            .unwrap();
        let mut b = Broker { node, port, dist_port, dir, child: None, _tmp: tmp };
        b.spawn();
        b
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("rabbit.pid")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The script's output and the tail of the node's own log.
    pub fn log_tail(&self) -> String {
        let node_log = self.dir.join("log").join(format!("{}.log", self.node));
        format!(
            "--- broker {} output ({}) ---\n{}\n--- broker log tail ({}) ---\n{}",
            self.node,
            self.log_path().display(),
            tail(&self.log_path(), 20),
            node_log.display(),
            tail(&node_log, 30)
        )
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the broker is already running");
        let _ = std::fs::remove_file(self.pid_file());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let d = &self.dir;
        let child = Command::new(RABBITMQ_SERVER)
            .current_dir(d)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", self.pid_file())
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env("HOME", d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {RABBITMQ_SERVER}: {e}"));
        self.child = Some(child);
        let started = Instant::now();
        // The AMQP listener opens late in the boot; then a full AMQP handshake must succeed.
        wait_until(
            "the broker's AMQP port",
            BROKER_START_TIMEOUT,
            || self.log_tail(),
            || {
                self.assert_running();
                std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()
            },
        );
        let url = self.url();
        wait_until(
            "an AMQP connection to the broker",
            BROKER_START_TIMEOUT,
            || self.log_tail(),
            || {
                self.assert_running();
                block_on(async {
                    let conn = connect(&url).await?;
                    let _ = conn.close(200, "ok".into()).await;
                    Ok::<_, String>(())
                })
                .ok()
            },
        );
        eprintln!("broker {} ready on port {} after {:?}", self.node, self.port, started.elapsed());
    }

    fn assert_running(&self) {
        // `try_wait` needs `&mut`; the pid is enough to see the script is still there.
        if let Some(c) = &self.child {
            if !Path::new(&format!("/proc/{}", c.id())).exists() || is_zombie(c.id()) {
                panic!("the broker exited during start\n{}", self.log_tail());
            }
        }
    }

    /// The `beam.smp` pid from the pid file, if that process is alive and is this node's VM (a
    /// stale pid file may name a recycled pid).
    fn beam_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let ours = String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(&self.vm_marker());
        (ours && alive(pid)).then_some(pid)
    }

    /// What only this node's VM has on its command line: the VM gets the node's private HOME
    /// as `-home <dir>` (the node name itself is not on the command line).
    fn vm_marker(&self) -> String {
        format!("home {} ", self.dir.display())
    }

    /// Pids of live processes whose command line carries [`Broker::vm_marker`] (the VM).
    pub fn vm_pids(&self) -> Vec<u32> {
        let out = Command::new("pgrep").args(["-f", &self.vm_marker()]).output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn vm_alive(&self) -> bool {
        self.beam_pid().is_some() || !self.vm_pids().is_empty()
    }

    /// Graceful stop: SIGTERM to the server's process group; waits until the VM has exited.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("the broker is running");
        let started = Instant::now();
        signal_group(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let script_done = child.try_wait().unwrap().is_some();
            if script_done && !self.vm_alive() {
                break;
            }
            if Instant::now() > deadline {
                signal_group(child.id(), "KILL");
                let _ = child.wait();
                self.kill_leftovers();
                panic!("the broker did not stop within 60 s after SIGTERM\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("broker {} stopped after {:?}", self.node, started.elapsed());
    }

    /// Starts the node again: same node name, ports and mnesia dir (durable queues and their
    /// persistent messages survive).
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// `rabbitmqctl -n <node> ARGS...` (stdout; panics on failure).
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new(RABBITMQCTL)
            .arg("-n")
            .arg(&self.node)
            .args(args)
            .env("HOME", &self.dir)
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", self.dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .output()
            .unwrap_or_else(|e| panic!("running {RABBITMQCTL}: {e}"));
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn kill_leftovers(&self) {
        if let Some(pid) = self.beam_pid() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        for pid in self.vm_pids() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.vm_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        if let Some(mut c) = self.child.take() {
            signal_group(c.id(), "KILL");
            let _ = c.kill();
            let _ = c.wait();
        }
        self.kill_leftovers();
    }
}

fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill").args([&format!("-{sig}"), "--", &format!("-{pgid}")]).stderr(Stdio::null()).status();
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

// ---------------------------------------------------------------------------------------------
// AMQP helpers (each call opens its own connection on a small runtime)

/// Runs `f` on a fresh tokio runtime.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap().block_on(f)
}

pub async fn connect(url: &str) -> Result<Connection, String> {
    match tokio::time::timeout(Duration::from_secs(10), Connection::connect(url, ConnectionProperties::default())).await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("connecting to {url}: {e}")),
        Err(_) => Err(format!("connecting to {url}: timed out")),
    }
}

async fn channel(url: &str) -> Result<(Connection, Channel), String> {
    let conn = connect(url).await?;
    let ch = conn.create_channel().await.map_err(|e| format!("opening a channel: {e}"))?;
    Ok((conn, ch))
}

/// One message as a consumer receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub body: Vec<u8>,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    pub delivery_mode: Option<u8>,
    pub headers: BTreeMap<String, AMQPValue>,
    pub redelivered: bool,
}

impl Msg {
    fn of(d: &lapin::message::Delivery) -> Msg {
        let p = &d.properties;
        Msg {
            body: d.data.clone(),
            message_id: p.message_id().as_ref().map(|s| s.as_str().to_string()),
            content_type: p.content_type().as_ref().map(|s| s.as_str().to_string()),
            delivery_mode: *p.delivery_mode(),
            headers: p
                .headers()
                .as_ref()
                .map(|h| h.inner().iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect())
                .unwrap_or_default(),
            redelivered: d.redelivered,
        }
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }
}

/// Consumes `queue` (auto-ack) until it stays empty: no delivery for a short idle time and a
/// passive declare reports 0 messages. Returns the messages in delivery order.
pub fn drain(url: &str, queue: &str) -> Vec<Msg> {
    const IDLE: Duration = Duration::from_millis(800);
    block_on(async {
        let (conn, ch) = channel(url).await.unwrap_or_else(|e| panic!("drain {queue}: {e}"));
        // (delivery tag, message): delegates may run concurrently, the tag keeps the order.
        let got: Arc<Mutex<Vec<(u64, Msg)>>> = Arc::default();
        let last = Arc::new(Mutex::new(Instant::now()));
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let consumer = ch
            .basic_consume(
                queue.into(),
                "acceptance-drain".into(),
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("basic.consume on {queue}: {e}"));
        let (g, l, errs) = (got.clone(), last.clone(), errors.clone());
        consumer.set_delegate(move |d: lapin::message::DeliveryResult| {
            let (g, l, errs) = (g.clone(), l.clone(), errs.clone());
            async move {
                match d {
                    Ok(Some(d)) => {
                        g.lock().unwrap().push((d.delivery_tag, Msg::of(&d)));
                        *l.lock().unwrap() = Instant::now();
                    }
                    Ok(None) => {}
                    Err(e) => errs.lock().unwrap().push(e.to_string()),
                }
            }
        });
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(errors.lock().unwrap().is_empty(), "consuming {queue}: {:?}", errors.lock().unwrap());
            if last.lock().unwrap().elapsed() < IDLE {
                continue;
            }
            // Idle: the queue must also report itself empty (else keep consuming).
            let (_c2, ch2) = channel(url).await.unwrap();
            let q = ch2
                .queue_declare(
                    queue.into(),
                    QueueDeclareOptions { passive: true, ..Default::default() },
                    FieldTable::default(),
                )
                .await
                .unwrap_or_else(|e| panic!("passive declare of {queue}: {e}"));
            if q.message_count() == 0 {
                break;
            }
            *last.lock().unwrap() = Instant::now();
        }
        let _ = ch.basic_cancel("acceptance-drain".into(), BasicCancelOptions::default()).await;
        let _ = conn.close(200, "drained".into()).await;
        let mut v = std::mem::take(&mut *got.lock().unwrap());
        v.sort_by_key(|(tag, _)| *tag);
        v.into_iter().map(|(_, m)| m).collect()
    })
}

/// Passive queue declare: the message count, or the broker's refusal (e.g. 404 NOT_FOUND).
pub fn passive_queue(url: &str, queue: &str) -> Result<u32, String> {
    block_on(async {
        let (_c, ch) = channel(url).await?;
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .map(|q| q.message_count())
        .map_err(|e| e.to_string())
    })
}

/// Passive exchange declare (fails when the exchange does not exist).
pub fn passive_exchange(url: &str, exchange: &str) -> Result<(), String> {
    block_on(async {
        let (_c, ch) = channel(url).await?;
        ch.exchange_declare(
            exchange.into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())
    })
}

/// A non-passive durable declare of `queue` with `args` (string values): succeeds only when the
/// queue does not exist or exists with equivalent arguments (else 406 PRECONDITION_FAILED).
pub fn declare_queue_with(url: &str, queue: &str, args: &[(&str, &str)]) -> Result<(), String> {
    block_on(async {
        let (_c, ch) = channel(url).await?;
        let mut t = FieldTable::default();
        for (k, v) in args {
            t.insert((*k).into(), AMQPValue::LongString((*v).into()));
        }
        ch.queue_declare(queue.into(), QueueDeclareOptions { durable: true, ..Default::default() }, t)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// A declare of exchange `name` (direct) with `durable`: equivalence check like
/// [`declare_queue_with`].
pub fn declare_exchange(url: &str, name: &str, durable: bool) -> Result<(), String> {
    block_on(async {
        let (_c, ch) = channel(url).await?;
        ch.exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions { durable, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())
    })
}

/// Publishes one message with `mandatory` and a publisher confirm; Err when it is nacked or
/// returned as unroutable.
pub fn publish(
    url: &str,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) -> Result<(), String> {
    block_on(async {
        let (_c, ch) = channel(url).await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| e.to_string())?;
        let confirm = ch
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions { mandatory: true, ..Default::default() },
                body,
                props,
            )
            .await
            .map_err(|e| e.to_string())?;
        match confirm.await.map_err(|e| e.to_string())? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(ret)) => Err(format!("returned: {} {}", ret.reply_code, ret.reply_text)),
            other => Err(format!("not confirmed: {other:?}")),
        }
    })
}
