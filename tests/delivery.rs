//! `optionflow run` delivering alerts to a webhook: the local server receives exactly the
//! webhook alerts of `alerts.jsonl`, the ledger records each, the file channel's lines are those
//! of a run without the webhook, and a replay of the run delivers nothing.

use axum::body::Bytes;
use axum::http::HeaderMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

mod common;
use common::{BIN, SIGNALLING_SESSION as SESSION};

fn optionflow(args: &[&str], dir: &Path, env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg(dir)
        .env("RUST_LOG", "warn")
        .env_remove("OPTIONFLOW_WEBHOOK_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("optionflow runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines(dir: &Path, file: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn field(line: &str, key: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v[key].as_str().unwrap_or_default().to_string()
}

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_delivers_its_webhook_alerts_once_and_its_file_output_is_unchanged() {
    let received: Received = Default::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let key = headers["idempotency-key"].to_str().unwrap().to_string();
                seen.lock().unwrap().push((key, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let plain = tempfile::tempdir().unwrap();
    let hooked = tempfile::tempdir().unwrap();
    let replayed = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "OPTIONFLOW__DISPATCH__CHANNELS",
            r#"["file","webhook"]"#.to_string(),
        ),
        (
            "OPTIONFLOW__CHANNELS__WEBHOOK__URL",
            format!("http://127.0.0.1:{port}/hook"),
        ),
        (
            "OPTIONFLOW__CHANNELS__WEBHOOK__REQUESTS_PER_MINUTE",
            "60000".to_string(),
        ),
        ("OPTIONFLOW_WEBHOOK_SECRET", "e2e-secret".to_string()),
    ];
    let (plain_path, hooked_path, replay_path) = (
        plain.path().to_path_buf(),
        hooked.path().to_path_buf(),
        replayed.path().to_path_buf(),
    );
    let run_args: Vec<&str> = ["run"]
        .into_iter()
        .chain(SESSION)
        .chain(["--data-dir"])
        .collect();
    let env2 = env.clone();
    tokio::task::spawn_blocking(move || {
        optionflow(&run_args, &plain_path, &[]);
        optionflow(&run_args, &hooked_path, &env2);
        // A replay of the delivering run, with the same environment, delivers nothing.
        let out = optionflow(
            &["replay", hooked_path.to_str().unwrap(), "--out"],
            &replay_path,
            &env2,
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    })
    .await
    .unwrap();

    let base = lines(plain.path(), "alerts.jsonl");
    let all = lines(hooked.path(), "alerts.jsonl");
    assert!(!base.is_empty(), "the session must alert");
    let (file, webhook): (Vec<_>, Vec<_>) = all.iter().partition(|l| field(l, "channel") == "file");
    // The file channel's alerts are byte-identical to those of a run without the webhook; the
    // webhook adds one alert per file alert (same decision, its own id).
    assert_eq!(file.iter().map(|s| s.as_str()).collect::<Vec<_>>(), base);
    assert_eq!(webhook.len(), base.len());
    assert!(webhook.iter().all(|l| field(l, "channel") == "webhook"));
    for (f, w) in file.iter().zip(&webhook) {
        assert_eq!(field(f, "decision_id"), field(w, "decision_id"));
    }

    // The server received exactly the webhook alerts, each once, each body the alert's JSON.
    let got = received.lock().unwrap().clone();
    let mut got_ids: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    let mut want_ids: Vec<String> = webhook.iter().map(|l| field(l, "event_id")).collect();
    got_ids.sort();
    want_ids.sort();
    assert_eq!(got_ids, want_ids);
    for (key, body) in &got {
        let line = webhook
            .iter()
            .find(|l| field(l, "event_id") == *key)
            .unwrap();
        let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
        let written: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(sent, written);
    }

    // One ledger line per webhook alert, delivered on the first attempt.
    let ledger = lines(hooked.path(), "deliveries.jsonl");
    assert_eq!(ledger.len(), webhook.len());
    let mut ledger_ids: Vec<String> = ledger.iter().map(|l| field(l, "alert_id")).collect();
    ledger_ids.sort();
    assert_eq!(ledger_ids, want_ids);
    for l in &ledger {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["channel"], "webhook");
        assert_eq!(v["status"], "delivered");
        assert_eq!(v["attempts"], 1);
        assert!(v["error"].is_null());
    }
    // The plain run and the replay have no ledger, and the replay's alerts are the run's.
    assert!(!plain.path().join("deliveries.jsonl").exists());
    assert!(!replayed.path().join("deliveries.jsonl").exists());
    assert_eq!(lines(replayed.path(), "alerts.jsonl"), all);
    assert_eq!(received.lock().unwrap().len(), got.len());

    // A crash after the first webhook alert's ledger line, past the checkpoint that covers the
    // rest: rewind the session to its previous checkpoint and keep one ledger line. The resumed
    // session sends exactly the alerts the ledger lacks (read back from alerts.jsonl or
    // re-emitted), never the one it has, and its outputs are unchanged.
    let ckpts = hooked.path().join("checkpoints");
    let mut names: Vec<String> = std::fs::read_dir(&ckpts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ckpt-"))
        .collect();
    names.sort();
    std::fs::write(ckpts.join("CURRENT"), &names[0]).unwrap();
    std::fs::remove_file(hooked.path().join("finished.json")).unwrap();
    std::fs::write(
        hooked.path().join("deliveries.jsonl"),
        format!("{}\n", ledger[0]),
    )
    .unwrap();
    received.lock().unwrap().clear();
    let hooked_path = hooked.path().to_path_buf();
    let run_args: Vec<&'static str> = ["run"]
        .into_iter()
        .chain(SESSION)
        .chain(["--data-dir"])
        .collect();
    let stderr = tokio::task::spawn_blocking(move || {
        let out = optionflow(&run_args, &hooked_path, &env);
        String::from_utf8_lossy(&out.stderr).into_owned()
    })
    .await
    .unwrap();
    assert!(stderr.contains("resumed from checkpoint"), "{stderr}");
    assert_eq!(lines(hooked.path(), "alerts.jsonl"), all);
    let mut resent: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    resent.sort();
    let kept = field(&ledger[0], "alert_id");
    assert!(
        want_ids.len() >= 2,
        "one alert kept, at least one to resend"
    );
    let mut missing: Vec<String> = want_ids.iter().filter(|i| **i != kept).cloned().collect();
    missing.sort();
    assert_eq!(resent, missing);
    let mut after: Vec<String> = lines(hooked.path(), "deliveries.jsonl")
        .iter()
        .map(|l| field(l, "alert_id"))
        .collect();
    after.sort();
    assert_eq!(after, want_ids);
}
