//! Notices at once when another process replaces a token file (a `tokenwatch login` or
//! `refresh` beside the daemon, a second daemon, the user), so every worker picks the new
//! token up within a moment instead of at its next look at the clock. One inotify watch
//! per folder for the whole process; nothing polls. Where a folder cannot be watched (it
//! does not exist yet, or the system has no watches left) the worker still notices the
//! change at its next turn, within a minute.

use notify::{RecursiveMode, Watcher};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::debug;

/// The running watch; dropping it stops it.
pub struct TokenFiles {
    _watcher: Option<notify::RecommendedWatcher>,
    watched: Vec<PathBuf>,
}

impl TokenFiles {
    /// True when changes to `path` wake its worker (its folder is watched).
    pub fn watches(&self, path: &std::path::Path) -> bool {
        path.parent()
            .is_some_and(|f| self.watched.iter().any(|w| w == f))
    }
}

/// Watch each token file's folder and wake the worker whose file changed.
pub fn watch(files: Vec<(PathBuf, Arc<Notify>)>) -> TokenFiles {
    let mut by_path: HashMap<PathBuf, Vec<Arc<Notify>>> = HashMap::new();
    for (path, wake) in files {
        // The verdict beside the token (another process's check) wakes the worker too.
        let verdict = crate::token::verdict::state_path(&path);
        by_path.entry(verdict).or_default().push(wake.clone());
        by_path.entry(path).or_default().push(wake);
    }
    let folders: Vec<PathBuf> = {
        let mut f: Vec<PathBuf> = by_path
            .keys()
            .filter_map(|p| p.parent().map(PathBuf::from))
            .collect();
        f.sort();
        f.dedup();
        f
    };
    let targets = by_path.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        for path in &event.paths {
            if let Some(wakes) = targets.get(path) {
                for wake in wakes {
                    wake.notify_one();
                }
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            debug!("cannot watch the token files ({e}); changes are noticed within a minute");
            return TokenFiles {
                _watcher: None,
                watched: Vec::new(),
            };
        }
    };
    let mut watched = Vec::new();
    for folder in folders {
        match watcher.watch(&folder, RecursiveMode::NonRecursive) {
            Ok(()) => watched.push(folder),
            Err(e) => debug!(
                "cannot watch {} ({e}); changes there are noticed within a minute",
                folder.display()
            ),
        }
    }
    TokenFiles {
        _watcher: Some(watcher),
        watched,
    }
}
