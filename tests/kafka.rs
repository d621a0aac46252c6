//! The distributed mode end to end: a real Kafka-compatible broker (Tansu, started here on a
//! free loopback port), the real binary, the same seeded session as the embedded mode.
//!
//! Tansu comes from `cargo install tansu --features dynostore` (`.ci/run` installs it into
//! `~/.cache/optionflow/tools`); `OPTIONFLOW_TANSU` names another binary.

mod common;

use common::{cql_server, read, BIN};
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Broker {
    fn start() -> Broker {
        Broker::start_on(free_port())
    }

    fn start_on(port: u16) -> Broker {
        Broker::start_advertising(port, port)
    }

    /// Listens on `port` and tells clients (in its metadata) to reach it on `advertised`.
    fn start_advertising(port: u16, advertised: u16) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised_url = format!("tcp://127.0.0.1:{advertised}");
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised_url,
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
        Broker {
            child,
            addr: format!("127.0.0.1:{advertised}"),
        }
    }
}

/// A TCP relay in front of the broker that can cut every connection and refuse new ones: an
/// outage as the clients see it, while the broker keeps its data.
struct Relay {
    addr: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(port: u16, target: String) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("relay port");
        let relay = Relay {
            addr: format!("127.0.0.1:{port}"),
            up: Default::default(),
            open: Default::default(),
        };
        relay.up.store(true, Ordering::SeqCst);
        let (up, open) = (relay.up.clone(), relay.open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                };
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    open.lock()
                        .unwrap()
                        .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                    pipe(client, s2);
                    pipe(server, c2);
                }
            }
        });
        relay
    }

    /// Drops every connection and refuses new ones until [`Relay::restore`].
    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Kafka-mode config for `broker`, with its own topic and group names; state in ScyllaDB at
/// `scylla` when given, in files otherwise.
fn kafka_config(dir: &Path, broker: &Broker, name: &str, scylla: Option<&str>) -> PathBuf {
    kafka_config_at(dir, &broker.addr, name, scylla)
}

fn kafka_config_at(dir: &Path, brokers: &str, name: &str, scylla: Option<&str>) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let state = match scylla {
        Some(addr) => format!(
            "[state]\nkind = \"scylla\"\n[scylla]\nnodes = [\"{addr}\"]\nkeyspace = \"{}\"\nconsistency = \"one\"\nschema-metadata = {}\n",
            name.replace('-', "_"),
            std::env::var("OPTIONFLOW_SCYLLA").is_ok()
        ),
        None => String::new(),
    };
    std::fs::write(
        &path,
        state
            + &format!(
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
                brokers
            ),
    )
    .expect("config written");
    path
}

fn embedded_reference(dir: &Path, env: &[(&str, String)]) -> PathBuf {
    let out = dir.join("embedded");
    let status = Command::new(BIN)
        .arg("run")
        .args(SESSION)
        .args(["--speed", "max", "--data-dir"])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
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
        let first_difference = want
            .lines()
            .zip(have.lines())
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("\nembedded: {a}\nkafka:    {b}"))
            .unwrap_or_default();
        assert!(
            want == have,
            "{file} differs: embedded has {} lines, kafka {} lines{first_difference}",
            want.lines().count(),
            have.lines().count()
        );
    }
}

#[test]
fn run_over_kafka_gives_exactly_the_embedded_alerts() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let reference = embedded_reference(dir.path(), &[]);
    let cfg = kafka_config(dir.path(), &broker, "allinone", None);
    let data = dir.path().join("kafka");
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
    let listed = Command::new(BIN)
        .args(["topics", "list", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("allinone.quotes.raw\t2 partitions"),
        "{listed}"
    );
    assert!(listed.contains("allinone.alerts\t1 partitions"), "{listed}");
    assert!(listed.contains("allinone.quotes.raw.dlq"), "{listed}");
    let corrupt = inject_corrupt_messages(&broker, "allinone.quotes.raw");
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
    // Dispatch measured source produce → alert over the broker, as the embedded sink does.
    let summary: serde_json::Value =
        serde_json::from_str(&read(&data, "finished.json")).expect("finished.json");
    let latency = (
        summary["latency_p50_us"].as_u64(),
        summary["latency_p99_us"].as_u64(),
    );
    assert!(
        matches!(latency, (Some(p50), Some(p99)) if 0 < p50 && p50 <= p99),
        "latency percentiles of a run with alerts: {summary}"
    );
    let dead = read_dead_letters(&broker, "allinone.quotes.raw.dlq", corrupt.len());
    assert_eq!(
        dead.len(),
        corrupt.len(),
        "every corrupt message is a dead letter"
    );
    for (payload, error) in &dead {
        assert!(
            corrupt.contains(payload),
            "the dead letter keeps the original payload"
        );
        assert!(!error.is_empty());
    }
    let errors: Vec<&str> = dead.iter().map(|(_, e)| e.as_str()).collect();
    assert!(
        errors.iter().any(|e| e.contains("no optionflow headers")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown schema fingerprint")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("not an Avro single-object")),
        "{errors:?}"
    );
    // The same command on a finished session says so and changes nothing.
    let again = run();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already finished"));
    assert_same_outputs(&reference, &data);
}

/// Writes three unusable messages to partition 0 of `topic`: one without optionflow's
/// headers, one framed as an event but with an unknown schema fingerprint, one framed as an
/// event that is not single-object encoded at all. Returns their payloads.
fn inject_corrupt_messages(broker: &Broker, topic: &str) -> Vec<Vec<u8>> {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("a producer");
    let event = |seq: &str| {
        OwnedHeaders::new()
            .insert(Header {
                key: "optionflow-kind",
                value: Some("event"),
            })
            .insert(Header {
                key: "optionflow-origin",
                value: Some("0"),
            })
            .insert(Header {
                key: "optionflow-origins",
                value: Some("1"),
            })
            .insert(Header {
                key: "optionflow-seq",
                value: Some(seq),
            })
    };
    let payloads = vec![
        b"not an event".to_vec(),
        [&[0xC3, 0x01], &[0xAB; 8][..], b"datum"].concat(),
        b"{\"json\": true}".to_vec(),
    ];
    let sends = [
        BaseRecord::<str, Vec<u8>>::to(topic)
            .partition(0)
            .key("GME")
            .payload(&payloads[0]),
        BaseRecord::to(topic)
            .partition(0)
            .key("GME")
            .payload(&payloads[1])
            .headers(event("1")),
        BaseRecord::to(topic)
            .partition(0)
            .key("GME")
            .payload(&payloads[2])
            .headers(event("2")),
    ];
    for record in sends {
        producer.send(record).map_err(|(e, _)| e).expect("queued");
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("the corrupt messages are written");
    payloads
}

/// Reads `want` messages from partition 0 of `topic`: payload and `optionflow-error` header.
fn read_dead_letters(broker: &Broker, topic: &str, want: usize) -> Vec<(Vec<u8>, String)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "dlq-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            let error = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "optionflow-error"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).to_string())
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), error));
        }
    }
    out
}

/// `run` over Kafka in the background, its stderr piped.
fn spawn_run(cfg: &Path, data: &Path, speed: &str) -> Child {
    spawn_run_logging(cfg, data, speed, "warn")
}

/// [`spawn_run`] with `RUST_LOG=log`.
fn spawn_run_logging(cfg: &Path, data: &Path, speed: &str, log: &str) -> Child {
    Command::new(BIN)
        .arg("run")
        .args(SESSION)
        .args(["--speed", speed, "--config"])
        .arg(cfg)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kafka run")
}

#[test]
fn run_waits_for_a_broker_that_starts_late() {
    let dir = tempfile::tempdir().unwrap();
    let reference = embedded_reference(dir.path(), &[]);
    let port = free_port();
    let cfg = kafka_config_at(dir.path(), &format!("127.0.0.1:{port}"), "late", None);
    let data = dir.path().join("kafka");
    let run = spawn_run(&cfg, &data, "max");
    // Nothing listens yet: the run must wait, not fail.
    std::thread::sleep(Duration::from_secs(4));
    let _broker = Broker::start_on(port);
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_same_outputs(&reference, &data);
}

/// Every connection is cut and refused for 5 s mid-run. The consumers' sessions time out, so
/// the stages give their partitions up (checkpointing wherever they are) and get them back:
/// a checkpoint's offset is then usually inside a record batch, which Tansu answers with the
/// next batch. The readers must notice (the first offset delivered is past the position, or a
/// writer's sequence numbers jump) and seek back until they are given every record; before
/// they did, the rest of that batch was lost, and 3 runs in 7 ended with different
/// alerts (README, "Distributed mode").
#[test]
fn a_broker_outage_mid_run_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let reference = embedded_reference(dir.path(), &[]);
    let (broker_port, relay_port) = (free_port(), free_port());
    let relay = Relay::start(relay_port, format!("127.0.0.1:{broker_port}"));
    let _broker = Broker::start_advertising(broker_port, relay_port);
    let cfg = kafka_config_at(dir.path(), &relay.addr, "outage", None);
    let data = dir.path().join("kafka");
    // Paced (30 minutes of market time at 100x is 18 s) so the outage lands mid-run.
    let run = spawn_run_logging(
        &cfg,
        &data,
        "100",
        "warn,optionflow_pipeline::kafka::stage=info",
    );
    let checkpoints = data.join("kafka-checkpoints");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&checkpoints).map_or(true, |mut d| d.next().is_none()) {
        assert!(Instant::now() < deadline, "no checkpoint before the outage");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    relay.cut();
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !data.join("finished.json").exists(),
        "the run finished before the outage"
    );
    relay.restore();
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("broker trouble") || stderr.contains("retrying"),
        "the outage is reported: {stderr}"
    );
    // What the readers had to re-read (none when every position was on a batch boundary).
    for line in stderr
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("seeking back") || l.contains("sequence gap"))
    {
        println!("{line}");
    }
    assert_same_outputs(&reference, &data);
}

/// A record of the source's writer numbered 1000 ahead of everything it writes, as if 1 to
/// 999 had been lost: normalize re-reads the partition from the beginning, still does not find
/// them, and the run stops with an error naming them rather than go on without them.
#[test]
fn records_missing_from_a_topic_stop_the_run() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = kafka_config(dir.path(), &broker, "missing", None);
    let topics = Command::new(BIN)
        .args(["topics", "create", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(topics.status.success());
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    let header = |key, value| Header {
        key,
        value: Some(value),
    };
    let headers = OwnedHeaders::new()
        .insert(header("optionflow-kind", "watermark:0"))
        .insert(header("optionflow-origin", "0"))
        .insert(header("optionflow-origins", "1"))
        .insert(header("optionflow-seq", "1000"));
    let record = BaseRecord::<str, [u8]>::to("missing.quotes.raw")
        .partition(0)
        .payload(&[])
        .headers(headers);
    producer.send(record).map_err(|(e, _)| e).unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    let out = Command::new(BIN)
        .arg("run")
        .args(SESSION)
        .args(["--speed", "max", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("kafka"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("normalize reading missing.quotes.raw partition 0: records 1 to 999 of writer 0 are not in the log"),
        "{stderr}"
    );
}

/// What the readers' re-reading is for (`pipeline/src/kafka/stream.rs`, `Position`): Tansu
/// answers a fetch from an offset inside a record batch with the next batch, so the rest of
/// that batch is never delivered (Kafka delivers the whole batch and the client drops what is
/// before the offset), and a fetch from inside the last batch delivers nothing. If this fails,
/// Tansu no longer does that: the re-reading is then merely never needed; update the README.
#[test]
fn tansu_answers_a_fetch_inside_a_batch_with_the_next_batch() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::Message;
    let broker = Broker::start();
    let client = || {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &broker.addr);
        c
    };
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = client().create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let topic = NewTopic::new("batches", 1, TopicReplication::Fixed(1));
    let created = rt
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("create topic");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    // Two batches of ten records: offsets 0..10 and 10..20.
    let producer: BaseProducer = client().set("linger.ms", "100").create().unwrap();
    for batch in 0..2 {
        for i in 0..10 {
            let value = format!("{batch}-{i}");
            let record = BaseRecord::<str, str>::to("batches")
                .partition(0)
                .payload(&value);
            producer.send(record).map_err(|(e, _)| e).unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }
    let first_delivered = |from: i64| {
        let consumer: BaseConsumer = client()
            .set("group.id", format!("from-{from}"))
            .set("fetch.wait.max.ms", "100")
            .create()
            .unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset("batches", 0, rdkafka::Offset::Offset(from))
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                return Some(m.offset());
            }
        }
        None
    };
    assert_eq!(first_delivered(0), Some(0));
    assert_eq!(first_delivered(10), Some(10));
    assert_eq!(first_delivered(5), Some(10), "offsets 5..10 skipped");
    assert_eq!(first_delivered(15), None, "offsets 15..20 never delivered");
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The environment that turns the webhook channel on, pointing at `url`.
fn webhook_env(url: String) -> Vec<(&'static str, String)> {
    vec![
        (
            "OPTIONFLOW__DISPATCH__CHANNELS",
            r#"["file","webhook"]"#.to_string(),
        ),
        ("OPTIONFLOW__CHANNELS__WEBHOOK__URL", url),
        (
            "OPTIONFLOW__CHANNELS__WEBHOOK__REQUESTS_PER_MINUTE",
            "60000".to_string(),
        ),
        ("OPTIONFLOW_WEBHOOK_SECRET", "kafka-e2e".to_string()),
    ]
}

/// Requests a local webhook receiver got: (path, Idempotency-Key).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A webhook receiver on a free loopback port, served from its own thread; its base URL.
fn webhook_server() -> (String, Received) {
    let received: Received = Default::default();
    let seen = received.clone();
    let base = common::serve_on_thread(move |_| {
        axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    seen.lock().unwrap().push((uri.path().to_string(), key));
                    "ok"
                }
            },
        )
    });
    (base, received)
}

fn stage(
    name: &str,
    cfg: &Path,
    data: &Path,
    log: &Path,
    exit_on_end: bool,
    env: &[(&str, String)],
) -> Proc {
    let mut c = Command::new(BIN);
    c.args(["stage", name, "--config"])
        .arg(cfg)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "info,scylla=off")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
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
    // Alerts also go to a webhook: the embedded reference posts to /embedded, the Kafka
    // deployment to /kafka (the URL is not part of any output).
    let (hook, received) = webhook_server();
    let reference = embedded_reference(dir.path(), &webhook_env(format!("{hook}/embedded")));
    let env = webhook_env(format!("{hook}/kafka"));
    // State in ScyllaDB: each process has a data directory of its own, so a partition moving
    // to another greeks copy can only continue from the checkpoint in the store.
    let scylla = cql_server();
    let cfg = kafka_config(dir.path(), &broker, "procs", Some(&scylla));
    let own_dir = |n: &str| {
        let d = dir.path().join(format!("data-{n}"));
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let migrate = Command::new(BIN)
        .args(["migrate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
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
        procs.push(stage(name, &cfg, &own_dir(name), &log(name), false, &env));
    }
    // Two copies of greeks share its two partitions.
    let greeks_a = stage(
        "greeks",
        &cfg,
        &own_dir("greeks-a"),
        &log("greeks-a"),
        false,
        &env,
    );
    procs.push(stage(
        "greeks",
        &cfg,
        &own_dir("greeks-b"),
        &log("greeks-b"),
        false,
        &env,
    ));
    let data = own_dir("dispatch");
    let mut dispatch = stage("dispatch", &cfg, &data, &log("dispatch"), true, &env);
    let source = Command::new(BIN)
        .args(["source", "simulator"])
        .args(SESSION)
        .args(["--speed", "60", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(own_dir("source"))
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log("source")).unwrap())
        .spawn()
        .expect("source starts");
    let _source = Proc(source);
    // Mid-run (the session is 30 s of wall time at speed 60), kill one greeks copy outright,
    // and start it again once its session timeout (6 s) has passed. (Tansu evicts a dead
    // member when the next member joins after its session expired; a join inside that window
    // can leave a partition assigned to the dead member until the rebalance timeout.)
    std::thread::sleep(Duration::from_secs(10));
    let mut killed = greeks_a;
    let _ = killed.0.kill();
    let _ = killed.0.wait();
    std::thread::sleep(Duration::from_secs(8));
    procs.push(stage(
        "greeks",
        &cfg,
        &own_dir("greeks-a2"),
        &log("greeks-a2"),
        false,
        &env,
    ));
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
        if Instant::now() > deadline {
            let logs: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .map(|e| {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(8).collect();
                    format!(
                        "== {}\n{}",
                        e.file_name().to_string_lossy(),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            panic!(
                "the session did not reach dispatch's end:\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        read(dir.path(), "greeks-a2.log").contains("restored checkpoint")
            || read(dir.path(), "greeks-b.log").contains("restored checkpoint"),
        "a partition moved to another greeks copy and was restored from its checkpoint"
    );
    // consensus and risk-gate keep their taps in their own directories.
    std::fs::copy(
        own_dir("consensus").join("signals.jsonl"),
        data.join("signals.jsonl"),
    )
    .unwrap();
    std::fs::copy(
        own_dir("risk-gate").join("decisions.jsonl"),
        data.join("decisions.jsonl"),
    )
    .unwrap();
    assert_same_outputs(&reference, &data);
    // Dispatch upserted every alert into ScyllaDB's `alerts` table, once.
    let alerts: Vec<serde_json::Value> = read(&data, "alerts.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let stored = rt.block_on(async {
        let cfg = optionflow_pipeline::scylla::ScyllaConfig {
            nodes: vec![scylla.clone()],
            keyspace: "procs".into(),
            consistency: optionflow_pipeline::scylla::config::ConsistencyLevel::One,
            schema_metadata: std::env::var("OPTIONFLOW_SCYLLA").is_ok(),
            ..Default::default()
        };
        let db = optionflow_pipeline::scylla::ScyllaState::connect(&cfg)
            .await
            .unwrap();
        let mut ids = Vec::new();
        let mut keys: Vec<(String, String)> = alerts
            .iter()
            .map(|a| {
                let t = a["event_time"].as_i64().unwrap();
                let day = chrono::DateTime::from_timestamp_micros(t)
                    .unwrap()
                    .format("%Y-%m-%d");
                (
                    a["underlying"].as_str().unwrap().to_string(),
                    day.to_string(),
                )
            })
            .collect();
        keys.sort();
        keys.dedup();
        for (u, day) in keys {
            let rows = db
                .outputs(optionflow_pipeline::scylla::OutputTable::Alerts, &u, &day)
                .await
                .unwrap();
            ids.extend(rows.into_iter().map(|(id, _)| id));
        }
        ids
    });
    let mut want_ids: Vec<String> = alerts
        .iter()
        .map(|a| a["event_id"].as_str().unwrap().to_string())
        .collect();
    let mut stored = stored;
    want_ids.sort();
    stored.sort();
    assert_eq!(stored, want_ids, "the alerts table holds each alert once");
    // Every webhook alert dispatch wrote reached the receiver exactly once, keyed by its id.
    let mut want: Vec<String> = read(&data, "alerts.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["channel"] == "webhook")
        .map(|v| v["event_id"].as_str().unwrap().to_string())
        .collect();
    assert!(!want.is_empty());
    let mut got: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _)| path == "/kafka")
        .map(|(_, key)| key.clone())
        .collect();
    want.sort();
    got.sort();
    assert_eq!(
        got,
        want,
        "one delivery per webhook alert, Idempotency-Key = alert id; dispatch said:\n{}",
        read(dir.path(), "dispatch.log")
            .lines()
            .filter(|l| !l.contains("scylla::"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
