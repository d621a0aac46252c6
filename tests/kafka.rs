//! The distributed mode end to end: a real Kafka-compatible broker (Tansu, started here on a
//! free loopback port), the real binary, the same seeded session as the embedded mode.
//!
//! Tansu comes from `cargo install tansu --features dynostore` (`.ci/run` installs it into
//! `~/.cache/optionflow/tools`); `OPTIONFLOW_TANSU` names another binary.

mod common;

use common::{read, BIN};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A session with alerts (the GME squeeze starts 10 minutes in) that Tansu carries quickly.
const SESSION: [&str; 6] = ["--duration", "30m", "--seed", "7", "--underlyings", "4"];

fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("OPTIONFLOW_TANSU") {
        return PathBuf::from(p);
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/optionflow/tools/bin/tansu");
    if cached.exists() {
        return cached;
    }
    PathBuf::from("tansu")
}

/// A Tansu broker with in-memory storage, killed on drop.
struct Broker {
    child: Child,
    addr: String,
}

impl Broker {
    fn start() -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "tansu starts (cargo install tansu --features dynostore, or set OPTIONFLOW_TANSU)",
            );
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Broker { child, addr }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Kafka-mode config for `broker`, with its own topic and group names.
fn kafka_config(dir: &Path, broker: &Broker, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[bus]
kind = "kafka"
[kafka]
brokers = "{}"
partitions = 2
topic-prefix = "{name}."
group-prefix = "{name}"
session-timeout-ms = 6000
[http]
listen = "127.0.0.1:0"
"#,
            broker.addr
        ),
    )
    .expect("config written");
    path
}

fn embedded_reference(dir: &Path) -> PathBuf {
    let out = dir.join("embedded");
    let status = Command::new(BIN)
        .arg("run")
        .args(SESSION)
        .args(["--speed", "max", "--data-dir"])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .expect("embedded run");
    assert!(status.success());
    assert!(
        !read(&out, "alerts.jsonl").is_empty(),
        "the reference session must alert, or the comparison proves nothing"
    );
    out
}

fn assert_same_outputs(reference: &Path, got: &Path) {
    for file in ["alerts.jsonl", "signals.jsonl", "decisions.jsonl"] {
        let (want, have) = (read(reference, file), read(got, file));
        assert!(
            want == have,
            "{file} differs: embedded has {} lines, kafka {} lines",
            want.lines().count(),
            have.lines().count()
        );
    }
}

#[test]
fn run_over_kafka_gives_exactly_the_embedded_alerts() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let reference = embedded_reference(dir.path());
    let cfg = kafka_config(dir.path(), &broker, "allinone");
    let data = dir.path().join("kafka");
    let run = || {
        Command::new(BIN)
            .arg("run")
            .args(SESSION)
            .args(["--speed", "max", "--config"])
            .arg(&cfg)
            .arg("--data-dir")
            .arg(&data)
            .env("RUST_LOG", "warn")
            .output()
            .expect("kafka run")
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_outputs(&reference, &data);
    // The same command on a finished session says so and changes nothing.
    let again = run();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already finished"));
    assert_same_outputs(&reference, &data);
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stage(name: &str, cfg: &Path, data: &Path, log: &Path, exit_on_end: bool) -> Proc {
    let mut c = Command::new(BIN);
    c.args(["stage", name, "--config"])
        .arg(cfg)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"));
    if exit_on_end {
        c.arg("--exit-on-end");
    }
    Proc(c.spawn().expect("stage starts"))
}

#[test]
fn stages_as_processes_survive_sigkill_and_share_partitions() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let reference = embedded_reference(dir.path());
    let cfg = kafka_config(dir.path(), &broker, "procs");
    // One data directory for every process: with `[state] kind = "embedded"` the checkpoint
    // files are the shared state store a partition's next owner restores from.
    let data = dir.path().join("kafka");
    std::fs::create_dir_all(&data).unwrap();
    let log = |n: &str| dir.path().join(format!("{n}.log"));
    let topics = Command::new(BIN)
        .args(["topics", "create", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        topics.status.success(),
        "{}",
        String::from_utf8_lossy(&topics.stderr)
    );
    let mut procs = Vec::new();
    for name in ["normalize", "score", "consensus", "explain", "risk-gate"] {
        procs.push(stage(name, &cfg, &data, &log(name), false));
    }
    // Two copies of greeks share its two partitions.
    let greeks_a = stage("greeks", &cfg, &data, &log("greeks-a"), false);
    procs.push(stage("greeks", &cfg, &data, &log("greeks-b"), false));
    let mut dispatch = stage("dispatch", &cfg, &data, &log("dispatch"), true);
    let source = Command::new(BIN)
        .args(["source", "simulator"])
        .args(SESSION)
        .args(["--speed", "60", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log("source")).unwrap())
        .spawn()
        .expect("source starts");
    let _source = Proc(source);
    // Mid-run (the session is 30 s of wall time at speed 60), kill one greeks copy outright and
    // start it again.
    std::thread::sleep(Duration::from_secs(12));
    let mut killed = greeks_a;
    let _ = killed.0.kill();
    let _ = killed.0.wait();
    procs.push(stage("greeks", &cfg, &data, &log("greeks-a2"), false));
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if let Some(status) = dispatch.0.try_wait().unwrap() {
            assert!(
                status.success(),
                "dispatch failed: {}",
                read(dir.path(), "dispatch.log")
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session did not reach dispatch's end; dispatch log:\n{}",
            read(dir.path(), "dispatch.log")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        read(dir.path(), "greeks-a2.log").contains("restored checkpoint")
            || read(dir.path(), "greeks-b.log").contains("restored checkpoint"),
        "a partition moved to another greeks copy and was restored from its checkpoint"
    );
    assert_same_outputs(&reference, &data);
}
