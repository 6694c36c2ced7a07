//! The container files: the `Dockerfile` and `deploy/docker-compose.yml` parse and name only
//! what exists in the repository, and the daemon behaves as the image runs it — configured
//! from the environment alone (the image's `ENV` lines), logging to stderr, answering
//! `/healthz`, and gone within 2 s of SIGTERM. (Where docker is installed, `.ci/run` also has
//! `docker compose config` read the compose file.)

mod common;

use common::{Sandbox, free_port};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                let (op, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((op.to_ascii_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

/// The `ENV` settings of the image that runs (the last stage).
fn image_env() -> BTreeMap<String, String> {
    let ins = instructions();
    let last_from = ins.iter().rposition(|(op, _)| op == "FROM").unwrap();
    let mut env = BTreeMap::new();
    for (op, rest) in &ins[last_from..] {
        if op == "ENV" {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV key=value");
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
    env
}

#[test]
fn the_dockerfile_builds_from_what_the_repository_holds_and_runs_the_daemon_unprivileged() {
    let ins = instructions();
    let ops: Vec<&str> = ins.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(ops.iter().filter(|o| **o == "FROM").count(), 2, "{ops:?}");
    // Every COPY from the build context names something that exists.
    for (op, rest) in &ins {
        if op == "COPY" && !rest.starts_with("--from") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            for source in &parts[..parts.len() - 1] {
                assert!(repo().join(source).exists(), "COPY {source}: no such path");
            }
        }
    }
    let last_from = ins.iter().rposition(|(op, _)| op == "FROM").unwrap();
    let run_stage = &ins[last_from..];
    let user = run_stage
        .iter()
        .find(|(op, _)| op == "USER")
        .map(|(_, u)| u.clone())
        .expect("the image runs as a user of its own");
    assert!(user != "root" && user != "0", "USER {user}");
    let health = run_stage
        .iter()
        .find(|(op, _)| op == "HEALTHCHECK")
        .expect("a HEALTHCHECK")
        .1
        .clone();
    assert!(health.contains("http://127.0.0.1:8000/healthz"), "{health}");
    let entry = run_stage.iter().find(|(op, _)| op == "ENTRYPOINT").unwrap();
    assert_eq!(entry.1, r#"["tokenwatch"]"#);
    let cmd = run_stage.iter().find(|(op, _)| op == "CMD").unwrap();
    assert_eq!(cmd.1, r#"["daemon"]"#);
    // The build never sees a secret or a token.
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for needed in ["target", ".env", "*token.json*"] {
        assert!(ignore.lines().any(|l| l.trim() == needed), "{needed}");
    }
}

#[test]
fn the_compose_file_shares_the_token_read_only_and_publishes_on_loopback_only() {
    let path = repo().join("deploy/docker-compose.yml");
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let dir = path.parent().unwrap();
    let tw = &compose["services"]["tokenwatch"];
    let context = dir.join(tw["build"]["context"].as_str().unwrap());
    assert!(
        context
            .join(tw["build"]["dockerfile"].as_str().unwrap())
            .exists()
    );
    // Its env_file is the .env the user makes from .env.example, beside it.
    for file in tw["env_file"].as_sequence().unwrap() {
        let env = dir.join(file.as_str().unwrap());
        let example = env.with_file_name(".env.example");
        assert!(example.exists(), "{}", example.display());
    }
    for port in tw["ports"].as_sequence().unwrap() {
        let port = port.as_str().unwrap();
        assert!(
            port.starts_with("127.0.0.1:"),
            "{port} is published beyond loopback"
        );
    }
    let volume = |v: &serde_yaml::Value| v.as_str().unwrap().to_string();
    let tw_volumes: Vec<String> = tw["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(volume)
        .collect();
    assert_eq!(tw_volumes, ["tokens:/data"]);
    let engine = &compose["services"]["engine"];
    let engine_volumes: Vec<String> = engine["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(volume)
        .collect();
    assert_eq!(
        engine_volumes,
        ["tokens:/data:ro"],
        "the engine reads, never writes"
    );
    assert_eq!(
        engine["depends_on"]["tokenwatch"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert!(compose["volumes"]["tokens"].is_null() || compose["volumes"]["tokens"].is_mapping());
    // The token path the compose file sets is the image's.
    assert_eq!(
        tw["environment"]["TOKENWATCH__TOKEN__PATH"].as_str(),
        image_env()
            .get("TOKENWATCH__TOKEN__PATH")
            .map(String::as_str)
    );
}

/// The image's environment, with its folders moved into the sandbox and the API on
/// `listen`.
fn container_env(sb: &Sandbox, listen: &str) -> Vec<(String, String)> {
    let data = sb.root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut env: Vec<(String, String)> = image_env()
        .into_iter()
        .map(|(k, v)| {
            let v = v.replace("/data", &data.display().to_string());
            (k, v)
        })
        .collect();
    env.retain(|(k, _)| k != "TOKENWATCH__SERVER__LISTEN");
    env.push(("TOKENWATCH__SERVER__LISTEN".into(), listen.into()));
    env
}

fn run_daemon(sb: &Sandbox, env: &[(String, String)]) -> std::process::Child {
    let mut cmd = sb.cmd(&["daemon"]);
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(sb.root.join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

#[test]
fn the_daemon_runs_from_the_environment_alone_answers_healthz_and_stops_within_2s() {
    let sb = Sandbox::new();
    // No config file anywhere: the environment is the whole configuration.
    let _ = std::fs::remove_dir_all(sb.root.join("config"));
    let port = free_port();
    let mut env = container_env(&sb, &format!("0.0.0.0:{port}"));
    // Beyond loopback, an API key is required: without one the daemon refuses to start.
    let child = run_daemon(&sb, &env);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.api_key"), "{err}");

    env.push((
        "TOKENWATCH__SERVER__API_KEY".into(),
        "container-test-key-0123456789abcdef".into(),
    ));
    let mut child = run_daemon(&sb, &env);
    let health = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answered = false;
    while Instant::now() < deadline {
        if let Ok(out) = std::process::Command::new("curl")
            .args(["-fsS", "--max-time", "2", &health])
            .output()
            && out.status.success()
        {
            let body = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(body.contains(r#""status":"ok""#), "{body}");
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answered, "/healthz never answered");
    // SIGTERM, as `docker stop` sends: gone within 2 s, exit 0.
    let asked = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "the daemon did not stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took < Duration::from_secs(2),
        "stopped {took:?} after SIGTERM"
    );
    let out = child.wait_with_output().unwrap();
    // Logs go to stderr, stdout stays empty; the token path is the volume's.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("INFO"), "{err}");
    assert!(err.contains("data/upstox_token.json"), "{err}");
    assert!(out.stdout.is_empty());
}
