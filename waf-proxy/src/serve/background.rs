//! Work beside the request path: reloads on SIGHUP and on file changes, the audit log reopened
//! on SIGUSR1, the health checks of sites with several upstreams, and the rate limiters' sweep.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::audit::AuditLog;
use super::live::Live;
use super::metrics::Metrics;

/// Changes arrive in bursts (an editor writes a temporary file, renames it, touches the folder):
/// wait this long after the last event before reloading once.
const SETTLE: Duration = Duration::from_millis(150);

/// Reloads the ruleset on SIGHUP and when a watched file changes; reopens the audit log on
/// SIGUSR1.
pub struct Reloader {
    pub live: Arc<Live>,
    pub audit: Arc<AuditLog>,
    pub watch: bool,
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (hangup, user1) = match (
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined1()),
        ) {
            (Ok(h), Ok(u)) => (h, u),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!("cannot listen for SIGHUP/SIGUSR1: {e}");
                return;
            }
        };
        let (mut hangup, mut user1) = (hangup, user1);
        let (tx, mut changes) = mpsc::unbounded_channel::<()>();
        let mut watcher = if self.watch {
            watch(&self.live, tx.clone())
        } else {
            None
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = hangup.recv() => { self.reload("SIGHUP", &mut watcher, &tx).await; }
                _ = user1.recv() => {
                    if let Err(e) = self.audit.reopen() {
                        tracing::error!("reopening the audit log: {e:#}");
                    }
                }
                Some(()) = changes.recv() => {
                    // Let the burst settle, then drain it.
                    tokio::time::sleep(SETTLE).await;
                    while changes.try_recv().is_ok() {}
                    self.reload("file change", &mut watcher, &tx).await;
                }
            }
        }
    }
}

impl Reloader {
    async fn reload(
        &self,
        trigger: &'static str,
        watcher: &mut Option<notify::RecommendedWatcher>,
        tx: &mpsc::UnboundedSender<()>,
    ) {
        let live = self.live.clone();
        let outcome = tokio::task::spawn_blocking(move || live.reload(trigger).is_ok()).await;
        // A reload may have added rule folders or files: watch the new set.
        if outcome.unwrap_or(false) && self.watch {
            *watcher = watch(&self.live, tx.clone());
        }
    }
}

/// Watches the config file and every rule path of the live snapshot. Folders are watched (not
/// single files) because editors replace files by renaming, which ends a watch on the old inode;
/// events are then filtered to the watched files and rule folders, so an audit log or an
/// editor's swap file beside the config does not trigger reloads.
fn watch(live: &Live, tx: mpsc::UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let watched = live.load().watched.clone();
    for p in watched
        .into_iter()
        .chain(live.config_path().map(|p| p.to_path_buf()))
    {
        let p = absolute(&p);
        if p.is_dir() {
            dirs.push(p);
        } else {
            files.push(p);
        }
    }
    let relevant = {
        let (files, dirs) = (files.clone(), dirs.clone());
        move |path: &Path| {
            files.iter().any(|f| f == path) || dirs.iter().any(|d| path.starts_with(d))
        }
    };
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event {
            if !e.kind.is_access() && e.paths.iter().any(|p| relevant(p)) {
                let _ = tx.send(());
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("file watching is off: {e}");
            return None;
        }
    };
    let mut folders: Vec<PathBuf> = dirs;
    for f in &files {
        if let Some(parent) = f.parent() {
            folders.push(parent.to_path_buf());
        }
    }
    folders.sort();
    folders.dedup();
    for folder in &folders {
        if let Err(e) = watcher.watch(folder, RecursiveMode::Recursive) {
            tracing::warn!(path = %folder.display(), "not watched: {e}");
        }
    }
    tracing::debug!(?folders, "watching for changes");
    Some(watcher)
}

/// The path made absolute with symbolic links resolved, so it compares equal to what the
/// watcher reports; as given when it cannot be resolved.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Runs the TCP health checks of every site with several upstream addresses, each at its own
/// interval, always on the live snapshot (a reload brings new balancers with it).
pub struct HealthChecks {
    pub live: Arc<Live>,
}

#[async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let snapshot = self.live.load();
            let now = Instant::now();
            for site in &snapshot.sites {
                if let Some(lb) = &site.balancer {
                    if site.health_check_due(now) {
                        lb.backends().run_health_check(true).await;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
}

/// How often the rate limiters forget the clients whose budget is full again.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Keeps the rate limiters' memory to the clients active lately (see
/// [`RateLimit::sweep`](super::rate_limit::RateLimit::sweep)), publishes how many each
/// counts, and warns of each limit that counts its `max_clients`.
pub struct RateLimitSweeper {
    pub live: Arc<Live>,
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl BackgroundService for RateLimitSweeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
            }
            let snapshot = self.live.load();
            // Limits a reload removed must not linger in the gauge.
            self.metrics.rate_limit_clients.reset();
            for site in &snapshot.sites {
                for limit in &site.rate_limits {
                    let (clients, full) = limit.sweep();
                    self.metrics
                        .rate_limit_clients
                        .with_label_values(&[site.name.as_str(), limit.name.as_str()])
                        .set(clients as i64);
                    if full {
                        tracing::warn!(
                            site = %site.name,
                            limit = %limit.name,
                            clients,
                            "rate limit full: clients it does not count yet pass uncounted \
                             (waf_rate_limit_uncounted_total); raise its max_clients if this is \
                             not an attack"
                        );
                    }
                }
            }
        }
    }
}
