//! The distributed-mode manifests in `deploy/` stay in step with the code: the stages it defines
//! (`optionflow_pipeline::kafka::STAGES`), the topics they read, the configuration they load and
//! the secrets they name.
//!
//! No YAML parser is in the dependency tree, so the YAML checks are structural, on the layout
//! these files keep (two-space indentation, commands as flow lists of double-quoted strings):
//! every Kubernetes document has `apiVersion`, `kind` and `metadata`; every stage has one
//! Deployment and a metrics Service, and one compose service, that run it; the stages reading a
//! single-partition topic run one copy with `Recreate`; every `--config` path is a file the
//! container mounts; and `deploy/kafka.toml`, the ConfigMap's TOML, and both with the
//! manifests' environment overrides, load as a `Config`.

use optionflow_pipeline::config::Config;
use optionflow_pipeline::kafka;
use optionflow_pipeline::scylla::StateKind;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(!text.trim().is_empty(), "{} is empty", path.display());
    text
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// A line holding nothing but whitespace or a comment.
fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// The lines that hold something, trimmed.
fn content(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !is_blank(l))
        .map(str::trim)
        .collect()
}

/// The documents of a YAML file (split on `---` lines), leaving out comment-only ones.
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().unwrap();
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.into_iter()
        .filter(|d| !d.lines().all(is_blank))
        .collect()
}

/// Every value of `key:` at any depth (also as a list item's first key), without quotes.
fn values(text: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}:");
    content(text)
        .into_iter()
        .filter_map(|t| t.strip_prefix("- ").unwrap_or(t).strip_prefix(&prefix))
        .map(|v| v.trim().trim_matches('"').to_string())
        .collect()
}

/// The value of a top-level `key:`.
fn top(doc: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}:");
    doc.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// The lists given as `key: ["a", "b", ...]` (possibly over several lines), parsed as JSON:
/// every command and argument list in these files is written that way.
fn flow_lists(text: &str, key: &str) -> Vec<Vec<String>> {
    let prefix = format!("{key}:");
    let lines = content(text);
    let mut out = Vec::new();
    for (i, t) in lines.iter().enumerate() {
        let Some(rest) = t.strip_prefix(&prefix).map(str::trim) else {
            continue;
        };
        if !rest.starts_with('[') {
            continue;
        }
        let mut buf = rest.to_string();
        let mut j = i;
        while !buf.ends_with(']') {
            j += 1;
            let next = lines
                .get(j)
                .unwrap_or_else(|| panic!("unterminated list after {key}: {rest}"));
            buf.push(' ');
            buf.push_str(next);
        }
        let list: Vec<String> =
            serde_json::from_str(&buf).unwrap_or_else(|e| panic!("{key}: {buf}: {e}"));
        out.push(list);
    }
    out
}

/// The words of a command (shell strings split on whitespace) and the paths given to `flag`.
fn flag_values(args: &[String], flag: &str) -> Vec<String> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    words
        .windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].to_string())
        .collect()
}

/// The blocks of `text` starting at keys indented by `depth`, by key, each holding its key line
/// and what is nested under it (comments left out).
fn blocks(text: &str, depth: usize) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines().filter(|l| !is_blank(l)) {
        let ind = indent(line);
        if ind <= depth {
            if let Some((k, v)) = current.take() {
                out.insert(k, v);
            }
        }
        if ind == depth {
            let key = line.trim().split(':').next().unwrap().to_string();
            current = Some((key, String::new()));
        }
        if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((k, v)) = current.take() {
        out.insert(k, v);
    }
    out
}

/// The items of a block holding one list: a flow list of JSON strings or a block list.
fn list_items(block: &str) -> Vec<String> {
    let mut lines = content(block).into_iter();
    let head = lines.next().unwrap();
    let rest = head.split_once(':').unwrap().1.trim();
    if rest.starts_with('[') {
        return flow_lists(block, head.split(':').next().unwrap())
            .pop()
            .unwrap();
    }
    lines
        .filter_map(|l| l.strip_prefix("- "))
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect()
}

/// `KEY: value` pairs nested in a block (an `environment:` map), single or double quotes off.
fn map_items(block: &str) -> Vec<(String, String)> {
    content(block)
        .into_iter()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn load(path: &Path, env: &[(String, String)]) -> Config {
    Config::load(Some(path), env.to_vec())
        .unwrap_or_else(|e| panic!("{} with {env:?}: {e}", path.display()))
}

/// The stages that read a single-partition topic: one copy does all their work.
fn single_copy(stage: &str) -> bool {
    let spec = kafka::spec(stage).unwrap();
    spec.input.partitions(&Default::default()) == 1
}

#[test]
fn kafka_toml_is_the_local_distributed_config() {
    let path = deploy().join("kafka.toml");
    let cfg = Config::load(Some(path.as_path()), std::iter::empty::<(String, String)>())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.bus.kind, kafka::config::BusKind::Kafka);
    assert_eq!(cfg.state.kind, StateKind::Scylla);
    assert_eq!(cfg.kafka.brokers, "127.0.0.1:9092");
    assert_eq!(cfg.kafka.partitions, 4);
    assert_eq!(cfg.scylla.nodes, vec!["127.0.0.1:9042".to_string()]);

    // The check above is only worth something if the loader refuses unknown keys in this file.
    let text = read(&path);
    assert!(text.contains("[bus]\n"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        text.replacen("[bus]\n", "[bus]\nno-such-key = 1\n", 1),
    )
    .unwrap();
    let err =
        Config::load(Some(bad.as_path()), std::iter::empty::<(String, String)>()).unwrap_err();
    assert!(err.to_string().contains("no-such-key"), "{err}");
}

#[test]
fn the_kubernetes_manifests_run_every_stage() {
    let dir = deploy().join("k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    for name in ["namespace", "configmap", "secret", "init-job", "source"] {
        assert!(
            files.iter().any(|f| f.file_stem().unwrap() == name),
            "no deploy/k8s/{name}.yaml"
        );
    }

    // Every document of every file, with its file name for the messages.
    let mut docs: Vec<(String, String)> = Vec::new();
    for f in &files {
        let text = read(f);
        let file_docs = documents(&text);
        assert!(!file_docs.is_empty(), "{} holds no document", f.display());
        for d in file_docs {
            for key in ["apiVersion", "kind", "metadata"] {
                assert!(
                    d.lines().any(|l| l.starts_with(&format!("{key}:"))),
                    "a document in {} has no {key}:\n{d}",
                    f.display()
                );
            }
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            docs.push((name, d));
        }
    }
    let of_kind = |kind: &str| {
        docs.iter()
            .filter(|(_, d)| top(d, "kind").as_deref() == Some(kind))
            .collect::<Vec<_>>()
    };
    let name_of = |d: &str| values(d, "name").first().cloned().unwrap();

    // One namespace, and every other object in it.
    let namespaces = of_kind("Namespace");
    assert_eq!(namespaces.len(), 1);
    let ns = name_of(&namespaces[0].1);
    for (file, d) in &docs {
        if top(d, "kind").as_deref() != Some("Namespace") {
            assert_eq!(values(d, "namespace"), vec![ns.clone()], "{file}:\n{d}");
        }
    }

    // The ConfigMap's TOML loads as a Config, with the kafka bus and the ScyllaDB state.
    let cms = of_kind("ConfigMap");
    assert_eq!(cms.len(), 1);
    let cm_doc = &cms[0].1;
    let cm = name_of(cm_doc);
    let mut cm_files = BTreeMap::new();
    let mut lines = cm_doc
        .lines()
        .skip_while(|l| l.trim_end() != "data:")
        .skip(1);
    let mut current: Option<String> = None;
    for l in lines.by_ref() {
        if !l.trim().is_empty() && indent(l) == 0 {
            break;
        }
        if !l.trim().is_empty() && indent(l) == 2 {
            let (k, v) = l.trim().split_once(':').unwrap();
            assert_eq!(v.trim(), "|", "ConfigMap key {k} is not a block");
            current = Some(k.to_string());
            cm_files.insert(k.to_string(), String::new());
        } else if let Some(k) = &current {
            let body: &mut String = cm_files.get_mut(k).unwrap();
            body.push_str(l.get(4..).unwrap_or(""));
            body.push('\n');
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    for (k, v) in &cm_files {
        std::fs::write(tmp.path().join(k), v).unwrap();
    }
    let cm_path = |file: &str| {
        assert!(cm_files.contains_key(file), "ConfigMap {cm} has no {file}");
        tmp.path().join(file)
    };

    // The Secret holds every variable the code reads secrets from.
    let secrets = of_kind("Secret");
    assert_eq!(secrets.len(), 1);
    let secret = name_of(&secrets[0].1);
    let secret_keys: BTreeSet<String> = secrets[0]
        .1
        .lines()
        .skip_while(|l| l.trim_end() != "stringData:")
        .skip(1)
        .filter(|l| !is_blank(l) && indent(l) == 2)
        .map(|l| l.trim().split(':').next().unwrap().to_string())
        .collect();
    let channels = Config::default().channels;
    for var in [
        optionflow_pipeline::vendor::polygon::KEY_VAR,
        optionflow_pipeline::vendor::tradier::KEY_VAR,
        optionflow_pipeline::delivery::telegram::TOKEN_ENV,
        channels.webhook.secret_env.as_str(),
        channels.slack.webhook_url_env.as_str(),
        channels.email.username_env.as_str(),
        channels.email.password_env.as_str(),
    ] {
        assert!(secret_keys.contains(var), "secret.yaml has no {var}");
    }

    let pvcs: BTreeSet<String> = of_kind("PersistentVolumeClaim")
        .iter()
        .map(|(_, d)| name_of(d))
        .collect();
    // The volume mounted at `path` in a pod spec.
    let volume_at = |d: &str, path: &str| -> String {
        let c = content(d);
        c.windows(2)
            .find(|w| w[1] == format!("mountPath: {path}"))
            .and_then(|w| w[0].strip_prefix("- name: "))
            .unwrap_or_else(|| panic!("nothing is mounted at {path}:\n{d}"))
            .to_string()
    };
    // What a volume is (`configMap`, `persistentVolumeClaim`, `emptyDir`) and the line after.
    let volume_source = |d: &str, volume: &str| -> (String, String) {
        let c = content(d);
        let item = format!("- name: {volume}");
        let i = (0..c.len())
            .find(|&i| c[i] == item && c.get(i + 1).is_some_and(|n| !n.starts_with("mountPath:")))
            .unwrap_or_else(|| panic!("no volume {volume}:\n{d}"));
        let source = c[i + 1].split(':').next().unwrap().to_string();
        // The line after: `name: <ConfigMap>`, `claimName: <claim>`, or nothing (emptyDir).
        let next = c.get(i + 2).map_or_else(String::new, |n| n.to_string());
        (source, next)
    };
    // Every container's `--config` is a key of the ConfigMap, mounted from it, and loads with the
    // container's environment overrides.
    let check_config = |file: &str, d: &str, args: &[String]| -> Config {
        let paths = flag_values(args, "--config");
        assert!(!paths.is_empty(), "{file}: no --config in {args:?}");
        let c = content(d);
        let env: Vec<(String, String)> = c
            .windows(2)
            .filter_map(|w| {
                let name = w[0].strip_prefix("- name: ")?;
                let value = w[1].strip_prefix("value: ")?;
                Some((name.to_string(), value.trim_matches('"').to_string()))
            })
            .filter(|(k, _)| k.starts_with("OPTIONFLOW__"))
            .collect();
        let mut cfg = None;
        for p in paths {
            let (dir, key) = p.rsplit_once('/').unwrap();
            let volume = volume_at(d, dir);
            assert_eq!(
                volume_source(d, &volume),
                ("configMap".to_string(), format!("name: {cm}")),
                "{file}: {dir} is not the ConfigMap"
            );
            cfg = Some(load(&cm_path(key), &env));
        }
        cfg.unwrap()
    };

    let deployments = of_kind("Deployment");
    let args_of = |d: &str| -> Vec<String> {
        flow_lists(d, "command")
            .into_iter()
            .chain(flow_lists(d, "args"))
            .flatten()
            .collect()
    };
    for stage in kafka::STAGES {
        let mine: Vec<_> = deployments
            .iter()
            .filter(|(_, d)| args_of(d).starts_with(&["stage".to_string(), stage.to_string()]))
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "deployments running stage {stage}: {}",
            mine.len()
        );
        let (file, d) = mine[0];
        let cfg = check_config(file, d, &args_of(d));
        assert_eq!(cfg.bus.kind, kafka::config::BusKind::Kafka, "{stage}");
        assert_eq!(cfg.state.kind, StateKind::Scylla, "{stage}");
        assert!(
            cfg.http.listen.ends_with(":9100"),
            "{stage}: {}",
            cfg.http.listen
        );
        assert!(
            values(d, "app.kubernetes.io/component")
                .iter()
                .all(|c| c == stage),
            "{stage}: labels"
        );
        let replicas: i32 = values(d, "replicas")[0].parse().unwrap();
        if single_copy(stage) {
            assert_eq!(replicas, 1, "{stage} reads one partition: one copy");
            assert!(
                values(d, "type").contains(&"Recreate".to_string()),
                "{stage}"
            );
        } else {
            assert!(
                (1..=cfg.kafka.partitions).contains(&replicas),
                "{stage}: {replicas} replicas for {} partitions",
                cfg.kafka.partitions
            );
        }
        assert_eq!(
            values(d, "terminationGracePeriodSeconds"),
            vec!["30"],
            "{stage}"
        );
        assert_eq!(values(d, "containerPort"), vec!["9100"], "{stage}");
        for probe in ["readinessProbe:", "livenessProbe:"] {
            assert!(content(d).contains(&probe), "{stage}: no {probe}");
        }
        assert_eq!(
            values(d, "tcpSocket").len(),
            2,
            "{stage}: probes are TCP checks"
        );
        assert!(
            values(d, "requests").len() == 1,
            "{stage}: no resource requests"
        );
        // A stage with a local file whose length its checkpoint records keeps it on a volume.
        let data_dir = flag_values(&args_of(d), "--data-dir");
        assert_eq!(data_dir.len(), 1, "{stage}: --data-dir");
        let (source, claim) = volume_source(d, &volume_at(d, &data_dir[0]));
        if kafka::spec(stage).unwrap().tap.is_some() {
            assert_eq!(source, "persistentVolumeClaim", "{stage}");
            let claim = claim.strip_prefix("claimName: ").unwrap();
            assert!(
                pvcs.contains(claim),
                "{stage}: no PersistentVolumeClaim {claim}"
            );
        }
        if stage == "dispatch" {
            let c = content(d);
            assert!(
                c.windows(2)
                    .any(|w| w[0] == "- secretRef:" && w[1] == format!("name: {secret}")),
                "dispatch gets the channel secrets"
            );
        }
        // Its metrics Service, annotated for Prometheus.
        let services: Vec<_> = of_kind("Service")
            .into_iter()
            .filter(|(_, s)| values(s, "app.kubernetes.io/component").contains(&stage.to_string()))
            .collect();
        assert_eq!(services.len(), 1, "services of {stage}");
        let s = &services[0].1;
        assert_eq!(values(s, "prometheus.io/scrape"), vec!["true"], "{stage}");
        assert_eq!(values(s, "prometheus.io/port"), vec!["9100"], "{stage}");
        assert_eq!(values(s, "port"), vec!["9100"], "{stage}");
    }

    // The source: one copy of a producer, with the vendor secrets.
    let sources: Vec<_> = deployments
        .iter()
        .filter(|(_, d)| args_of(d).first().map(String::as_str) == Some("source"))
        .collect();
    assert_eq!(sources.len(), 1);
    let (file, d) = sources[0];
    let args = args_of(d);
    assert!(
        ["simulator", "tape", "polygon", "tradier"].contains(&args[1].as_str()),
        "{args:?}"
    );
    check_config(file, d, &args);
    assert_eq!(values(d, "replicas"), vec!["1"]);
    assert!(values(d, "type").contains(&"Recreate".to_string()));
    assert!(content(d).contains(&"- secretRef:"));

    // The init Job: topics, then migrations.
    let jobs = of_kind("Job");
    assert_eq!(jobs.len(), 1);
    let (file, d) = jobs[0];
    let args = args_of(d);
    let script = args.join(" ");
    assert!(
        script.contains("optionflow topics create --config"),
        "{script}"
    );
    assert!(script.contains("optionflow migrate --config"), "{script}");
    check_config(file, d, &args);

    // Nothing else runs a container: every Deployment is a stage or the source.
    assert_eq!(deployments.len(), kafka::STAGES.len() + 1);
}

#[test]
fn the_compose_file_runs_every_stage() {
    let text = read(&deploy().join("docker-compose.yml"));
    let top_blocks = blocks(&text, 0);
    let services = blocks(&top_blocks["services"], 2);
    // Anchors (`x-optionflow: &optionflow`) by name, with their keys.
    let anchors: BTreeMap<String, BTreeMap<String, String>> = top_blocks
        .values()
        .filter_map(|b| {
            let head = b.lines().next().unwrap();
            let name = head.split_once('&')?.1.trim().to_string();
            Some((name, blocks(b, 2)))
        })
        .collect();
    // A service's key: its own, else the first of the anchors it merges (`<<:`) that has it.
    let key_of = |service: &str, key: &str| -> Option<String> {
        let own = blocks(&services[service], 4);
        if let Some(b) = own.get(key) {
            return Some(b.clone());
        }
        let merged = own.get("<<")?;
        merged
            .split(|c: char| c == '*' || c == ',' || c == ']' || c.is_whitespace())
            .filter(|a| !a.is_empty())
            .filter_map(|a| anchors.get(a))
            .find_map(|a| a.get(key).cloned())
    };
    let command_of = |service: &str| -> Vec<String> {
        key_of(service, "command").map_or_else(Vec::new, |b| list_items(&b))
    };

    // Each service that passes --config mounts that path from a file in deploy/, and the file
    // loads with the service's environment overrides.
    let kafka_toml = deploy().join("kafka.toml");
    let check_config = |service: &str| -> Config {
        let mut cmd = key_of(service, "entrypoint").map_or_else(Vec::new, |b| list_items(&b));
        cmd.extend(command_of(service));
        let paths = flag_values(&cmd, "--config");
        assert!(!paths.is_empty(), "{service}: no --config in {cmd:?}");
        let mounts = key_of(service, "volumes").map_or_else(Vec::new, |b| list_items(&b));
        let env = key_of(service, "environment").map_or_else(Vec::new, |b| map_items(&b));
        let mut cfg = None;
        for p in paths {
            let host = mounts
                .iter()
                .find_map(|m| {
                    let mut parts = m.split(':');
                    let host = parts.next()?;
                    (parts.next()? == p).then_some(host)
                })
                .unwrap_or_else(|| panic!("{service}: --config {p} is not mounted ({mounts:?})"));
            let host = deploy().join(
                host.strip_prefix("./")
                    .unwrap_or_else(|| panic!("{service}: {host} is not a file in deploy/")),
            );
            assert!(
                host.is_file(),
                "{service}: {} is not a file",
                host.display()
            );
            cfg = Some(load(&host, &env));
        }
        cfg.unwrap()
    };

    for stage in kafka::STAGES {
        assert!(services.contains_key(stage), "no compose service {stage}");
        let cmd = command_of(stage);
        assert!(
            cmd.starts_with(&["stage".to_string(), stage.to_string()]),
            "service {stage} runs {cmd:?}"
        );
        let cfg = check_config(stage);
        assert_eq!(cfg.bus.kind, kafka::config::BusKind::Kafka);
        assert_eq!(cfg.kafka.brokers, "kafka:9092", "{stage}");
        assert_eq!(cfg.scylla.nodes, vec!["scylla:9042".to_string()], "{stage}");
        assert!(
            cfg.http.listen.ends_with(":9100"),
            "{stage}: {}",
            cfg.http.listen
        );
        let deps = key_of(stage, "depends_on").unwrap_or_default();
        assert!(
            deps.contains("init:") && deps.contains("service_completed_successfully"),
            "{stage} does not wait for init: {deps}"
        );
        assert!(
            key_of(stage, "stop_grace_period").is_some(),
            "{stage}: no stop_grace_period"
        );
        if kafka::spec(stage).unwrap().tap.is_some() {
            let mounts = key_of(stage, "volumes").map_or_else(Vec::new, |b| list_items(&b));
            let data_dir = flag_values(&cmd, "--data-dir");
            assert!(
                mounts.iter().any(|m| {
                    let mut parts = m.split(':');
                    let host = parts.next().unwrap_or("");
                    !host.starts_with('.') && parts.next() == Some(data_dir[0].as_str())
                }),
                "{stage}: its data directory is not a named volume ({mounts:?})"
            );
        }
    }

    // The source, the one-shot init and the infrastructure it waits for.
    let source = command_of("source");
    assert!(
        source.starts_with(&["source".to_string(), "simulator".to_string()]),
        "{source:?}"
    );
    check_config("source");
    let init = command_of("init").join(" ");
    assert!(init.contains("optionflow topics create --config"), "{init}");
    assert!(init.contains("optionflow migrate --config"), "{init}");
    check_config("init");
    let init_deps = key_of("init", "depends_on").unwrap();
    for infra in ["kafka", "scylla"] {
        assert!(
            key_of(infra, "healthcheck").is_some(),
            "{infra} has no healthcheck"
        );
        assert!(
            init_deps.contains(&format!("{infra}:")),
            "init does not wait for {infra}"
        );
    }
    assert!(
        init_deps.matches("service_healthy").count() >= 2,
        "{init_deps}"
    );
    let kafka_env: BTreeMap<String, String> = map_items(&key_of("kafka", "environment").unwrap())
        .into_iter()
        .collect();
    assert!(
        kafka_env["KAFKA_PROCESS_ROLES"].contains("controller"),
        "KRaft"
    );
    assert!(
        kafka_env["KAFKA_ADVERTISED_LISTENERS"].contains("//kafka:9092"),
        "the brokers the stages are given are advertised"
    );
    // The listener for the host is the address deploy/kafka.toml names.
    let local = load(&kafka_toml, &[]);
    assert!(
        kafka_env["KAFKA_ADVERTISED_LISTENERS"].contains(&format!("//{}", local.kafka.brokers)),
        "kafka.toml's brokers are not advertised"
    );
    // The embedded pipeline is still there.
    assert!(command_of("optionflow").starts_with(&["run".to_string()]));

    // Prometheus scrapes every stage's service on the port the stages listen on.
    let prom = read(&deploy().join("prometheus/prometheus.yml"));
    let names: BTreeSet<String> = values(&prom, "names")
        .iter()
        .flat_map(|v| {
            v.trim_matches(|c: char| c == '[' || c == ']')
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for stage in kafka::STAGES {
        assert!(
            names.contains(stage),
            "prometheus.yml does not scrape {stage}"
        );
    }
    for n in &names {
        assert!(
            services.contains_key(n.as_str()),
            "prometheus.yml names no service {n}"
        );
    }
    assert!(values(&prom, "port").contains(&"9100".to_string()));
}
