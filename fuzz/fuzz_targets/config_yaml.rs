//! Config loader: a config file holding any bytes loads or fails with a message naming the
//! file; a loaded config can always be shown (`config check`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tokenwatch::config::{self, LoadOptions};
use tokenwatch::paths::Env;

struct Scratch {
    dir: tempfile::TempDir,
    env: Env,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("a home folder");
        let env = Env::from([("HOME".to_string(), home.display().to_string())]);
        Scratch { dir, env }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = scratch();
    let path = s.dir.path().join("tokenwatch.yaml");
    std::fs::write(&path, data).expect("writing the config file");
    let opts = LoadOptions {
        config_file: Some(path),
        cwd: s.dir.path().to_path_buf(),
        ..Default::default()
    };
    match config::load(&opts, &s.env, None) {
        Ok(c) => assert!(!c.to_masked_yaml().starts_with("# cannot show")),
        Err(e) => assert!(!e.origin.is_empty() && !e.message.is_empty()),
    }
});
