//! Where things live: home, XDG folders, `~` expansion and relative-path resolution.
//! Everything reads from an [`Env`] map instead of the process environment so that tests
//! (and the config loader) see exactly the variables they were given.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// A snapshot of environment variables (the real environment overlaid on `.env`).
pub type Env = BTreeMap<String, String>;

/// The user's home folder: `$HOME`, else what the OS says.
pub fn home(env: &Env) -> Option<PathBuf> {
    env.get("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(std::env::home_dir)
}

fn xdg(env: &Env, var: &str, fallback: &str) -> PathBuf {
    match env.get(var).filter(|v| Path::new(v).is_absolute()) {
        Some(dir) => PathBuf::from(dir),
        None => home(env)
            .unwrap_or_else(|| PathBuf::from("/"))
            .join(fallback),
    }
}

/// `$XDG_CONFIG_HOME` (default `~/.config`).
pub fn config_home(env: &Env) -> PathBuf {
    xdg(env, "XDG_CONFIG_HOME", ".config")
}

/// tokenwatch's state folder: `$XDG_STATE_HOME/tokenwatch` (default `~/.local/state/tokenwatch`).
pub fn state_dir(env: &Env) -> PathBuf {
    xdg(env, "XDG_STATE_HOME", ".local/state").join("tokenwatch")
}

/// Expand a leading `~` or `~/` to the home folder.
pub fn expand_tilde(path: &str, env: &Env) -> PathBuf {
    if path == "~" {
        if let Some(h) = home(env) {
            return h;
        }
    } else if let Some(rest) = path.strip_prefix("~/")
        && let Some(h) = home(env)
    {
        return h.join(rest);
    }
    PathBuf::from(path)
}

/// Expand `~`, then make a relative path absolute against `base`, and drop `.` parts.
pub fn resolve(path: &str, base: &Path, env: &Env) -> PathBuf {
    let p = expand_tilde(path, env);
    let joined = if p.is_absolute() { p } else { base.join(p) };
    normalize(&joined)
}

/// Lexical normalisation (no symlinks followed): removes `.` and folds `..`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tilde_and_relative_paths() {
        let e = env(&[("HOME", "/home/u")]);
        assert_eq!(expand_tilde("~/x", &e), PathBuf::from("/home/u/x"));
        assert_eq!(expand_tilde("~", &e), PathBuf::from("/home/u"));
        assert_eq!(expand_tilde("a/~/b", &e), PathBuf::from("a/~/b"));
        assert_eq!(
            resolve("./t.json", Path::new("/etc/tw"), &e),
            PathBuf::from("/etc/tw/t.json")
        );
        assert_eq!(
            resolve("../t.json", Path::new("/etc/tw"), &e),
            PathBuf::from("/etc/t.json")
        );
        assert_eq!(
            resolve("/abs", Path::new("/etc/tw"), &e),
            PathBuf::from("/abs")
        );
    }

    #[test]
    fn xdg_folders_follow_the_environment() {
        let e = env(&[("HOME", "/home/u")]);
        assert_eq!(
            state_dir(&e),
            PathBuf::from("/home/u/.local/state/tokenwatch")
        );
        assert_eq!(config_home(&e), PathBuf::from("/home/u/.config"));
        let e = env(&[
            ("HOME", "/home/u"),
            ("XDG_STATE_HOME", "/s"),
            ("XDG_CONFIG_HOME", "relative"),
        ]);
        assert_eq!(state_dir(&e), PathBuf::from("/s/tokenwatch"));
        // The XDG spec says relative values are invalid and must be ignored.
        assert_eq!(config_home(&e), PathBuf::from("/home/u/.config"));
    }
}
