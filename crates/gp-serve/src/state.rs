//! The service's memory: one `SQLite` database (WAL, synchronous writes) with apps, builds, deployments and patch
//! campaigns. Every state change is one transaction, so `kill -9` at any moment leaves either the old or the new
//! state. [`State::recover`] — run when the service starts — turns builds that were running when it died into
//! queued ones, once, in the same record: the build reruns once and history keeps one record of it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::builder::BuiltWith;
use crate::reason::{self, Reason, Work};

/// The schema's version, kept in `meta`; a database written by a newer schema is refused, an older one is
/// migrated when it is opened. 2: `apps.built_with`.
pub const SCHEMA_VERSION: i64 = 2;

/// Build records kept per app (older ones are pruned as new ones finish); kpack keeps 10.
pub const HISTORY: i64 = 50;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the state database `{path}`: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the state database `{path}` has schema {found}, newer than this goldenpath's {SCHEMA_VERSION}: upgrade goldenpath, or point it at another state directory"
    )]
    Newer { path: String, found: i64 },
    #[error("cannot create the state directory `{path}`: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the state database holds a bad value: {0}")]
    Value(#[from] reason::UnknownReason),
    #[error("no build {0} in the state database")]
    NoBuild(i64),
    #[error("cannot record what built {app}: {source}")]
    BuiltWith {
        app: String,
        #[source]
        source: serde_json::Error,
    },
}

/// An app the service keeps built and deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    pub name: String,
    /// The contract file it comes from (relative to the contracts repository).
    pub contract: String,
    pub git_url: Option<String>,
    pub branch: Option<String>,
    /// The revision last built.
    pub revision: Option<String>,
    /// The image reference (without digest) it is published as.
    pub image: Option<String>,
    /// The digest last built or rebased.
    pub digest: Option<String>,
    /// The run image digest it is on.
    pub run_image: Option<String>,
    /// `new`, `building`, `running`, `failed`, `invalid`.
    pub status: String,
    /// The builder and buildpacks its last build used (a rebase keeps them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub built_with: Option<BuiltWith>,
}

/// What a successful build or rebase leaves on its app.
#[derive(Debug, Clone, Copy)]
pub struct Succeeded<'a> {
    pub digest: &'a str,
    /// The run image digest it is on.
    pub run_image: Option<&'a str>,
    /// What built it; `None` (a rebase) keeps what the app had.
    pub built_with: Option<&'a BuiltWith>,
}

/// Where a build record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl BuildStatus {
    fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Queued => "queued",
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "queued" => BuildStatus::Queued,
            "running" => BuildStatus::Running,
            "succeeded" => BuildStatus::Succeeded,
            _ => BuildStatus::Failed,
        }
    }
}

/// One build (or rebase) record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Build {
    pub id: i64,
    pub app: String,
    pub work: Work,
    pub reasons: BTreeSet<Reason>,
    pub revision: Option<String>,
    pub status: BuildStatus,
    pub attempt: u32,
    /// Unix seconds.
    pub queued: f64,
    pub started: Option<f64>,
    pub finished: Option<f64>,
    pub digest: Option<String>,
    pub error: Option<String>,
    /// Whether it was interrupted (the service died while it ran) and queued again.
    pub resumed: bool,
}

/// A build interrupted by a crash, queued again by [`State::recover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    pub id: i64,
    pub app: String,
    pub reasons: BTreeSet<Reason>,
    pub revision: Option<String>,
}

#[derive(Debug)]
pub struct State {
    db: Connection,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (
    name TEXT PRIMARY KEY,
    contract TEXT NOT NULL,
    git_url TEXT,
    branch TEXT,
    revision TEXT,
    image TEXT,
    digest TEXT,
    run_image TEXT,
    status TEXT NOT NULL DEFAULT 'new',
    updated REAL NOT NULL,
    built_with TEXT
);
CREATE TABLE IF NOT EXISTS builds (
    id INTEGER PRIMARY KEY,
    app TEXT NOT NULL,
    work TEXT NOT NULL,
    reasons TEXT NOT NULL,
    revision TEXT,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    queued REAL NOT NULL,
    started REAL,
    finished REAL,
    digest TEXT,
    error TEXT,
    log TEXT NOT NULL DEFAULT '',
    resumed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS builds_by_app ON builds (app, id);
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY,
    app TEXT NOT NULL,
    digest TEXT NOT NULL,
    url TEXT NOT NULL,
    started REAL NOT NULL,
    stopped REAL
);
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    run_image TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    report TEXT
);
";

impl State {
    /// Opens (creating) the database at `path`: WAL, synchronous commits, the schema checked.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let open_err = |source| StateError::Open {
            path: path.display().to_string(),
            source,
        };
        let db = Connection::open(path).map_err(open_err)?;
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        db.execute_batch(SCHEMA).map_err(open_err)?;
        let found: Option<i64> = db
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'schema'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(open_err)?;
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StateError::Newer {
                    path: path.display().to_string(),
                    found: v,
                });
            }
            Some(1) => {
                // 1 → 2: what each app was built with (unknown for builds made before: no builder change
                // rebuilds them until their next build records it).
                let tx = db.unchecked_transaction().map_err(open_err)?;
                tx.execute_batch(
                    "ALTER TABLE apps ADD COLUMN built_with TEXT;
                     UPDATE meta SET value = '2' WHERE key = 'schema';",
                )
                .map_err(open_err)?;
                tx.commit().map_err(open_err)?;
            }
            Some(_) => {}
            None => {
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(open_err)?;
            }
        }
        Ok(Self { db })
    }

    /// Adds or updates an app's contract fields (what was built stays).
    pub fn upsert_app(&self, app: &App) -> Result<(), StateError> {
        self.db.execute(
            "INSERT INTO apps (name, contract, git_url, branch, image, status, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (name) DO UPDATE SET contract = ?2, git_url = ?3, branch = ?4, image = ?5, updated = ?7",
            params![app.name, app.contract, app.git_url, app.branch, app.image, app.status, now()],
        )?;
        Ok(())
    }

    /// Sets an app's status (`building`, `running`, `failed`, `invalid`, ...).
    pub fn set_status(&self, app: &str, status: &str) -> Result<(), StateError> {
        self.db.execute(
            "UPDATE apps SET status = ?2, updated = ?3 WHERE name = ?1",
            params![app, status, now()],
        )?;
        Ok(())
    }

    pub fn apps(&self) -> Result<Vec<App>, StateError> {
        let mut q = self.db.prepare(
            "SELECT name, contract, git_url, branch, revision, image, digest, run_image, status, built_with FROM apps ORDER BY name",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                App {
                    name: r.get(0)?,
                    contract: r.get(1)?,
                    git_url: r.get(2)?,
                    branch: r.get(3)?,
                    revision: r.get(4)?,
                    image: r.get(5)?,
                    digest: r.get(6)?,
                    run_image: r.get(7)?,
                    status: r.get(8)?,
                    built_with: None,
                },
                r.get::<_, Option<String>>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut app, built_with) = row?;
            // A value this version cannot read counts as unknown: the app is then not compared with a new
            // builder until its next build records it again, and every other app is still served.
            app.built_with = built_with.and_then(|text| serde_json::from_str(&text).ok());
            out.push(app);
        }
        Ok(out)
    }

    /// A new build record, running from now — or, with `resume`, the interrupted record started again.
    pub fn start_build(
        &self,
        app: &str,
        work: Work,
        reasons: &BTreeSet<Reason>,
        revision: Option<&str>,
        attempt: u32,
        resume: Option<i64>,
    ) -> Result<i64, StateError> {
        let t = now();
        let work = match work {
            Work::Rebase => "rebase",
            Work::Build => "build",
        };
        if let Some(id) = resume {
            let n = self.db.execute(
                "UPDATE builds SET status = 'running', started = ?2, work = ?3 WHERE id = ?1",
                params![id, t, work],
            )?;
            if n == 0 {
                return Err(StateError::NoBuild(id));
            }
            return Ok(id);
        }
        self.db.execute(
            "INSERT INTO builds (app, work, reasons, revision, status, attempt, queued, started)
             VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?6)",
            params![app, work, reason::join(reasons), revision, attempt, t],
        )?;
        Ok(self.db.last_insert_rowid())
    }

    /// Appends to a build's log.
    pub fn append_log(&self, id: i64, text: &str) -> Result<(), StateError> {
        self.db.execute(
            "UPDATE builds SET log = log || ?2 WHERE id = ?1",
            params![id, text],
        )?;
        Ok(())
    }

    /// Ends a build: succeeded (the app then records digest, revision, run image and what built it), or failed
    /// with its error. Old records beyond [`HISTORY`] for the app are pruned. One transaction.
    pub fn finish_build(
        &mut self,
        id: i64,
        outcome: Result<Succeeded<'_>, &str>,
    ) -> Result<(), StateError> {
        let tx = self.db.transaction()?;
        let app: String = tx
            .query_row("SELECT app FROM builds WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or(StateError::NoBuild(id))?;
        let t = now();
        match outcome {
            Ok(done) => {
                let built_with = done
                    .built_with
                    .map(|b| {
                        serde_json::to_string(b).map_err(|source| StateError::BuiltWith {
                            app: app.clone(),
                            source,
                        })
                    })
                    .transpose()?;
                tx.execute(
                    "UPDATE builds SET status = 'succeeded', finished = ?2, digest = ?3 WHERE id = ?1",
                    params![id, t, done.digest],
                )?;
                tx.execute(
                    "UPDATE apps SET digest = ?2, run_image = COALESCE(?3, run_image),
                     revision = COALESCE((SELECT revision FROM builds WHERE id = ?4), revision), updated = ?5,
                     built_with = COALESCE(?6, built_with)
                     WHERE name = ?1",
                    params![app, done.digest, done.run_image, id, t, built_with],
                )?;
            }
            Err(error) => {
                tx.execute(
                    "UPDATE builds SET status = 'failed', finished = ?2, error = ?3 WHERE id = ?1",
                    params![id, t, error],
                )?;
            }
        }
        tx.execute(
            "DELETE FROM builds WHERE app = ?1 AND status IN ('succeeded', 'failed') AND id NOT IN
             (SELECT id FROM builds WHERE app = ?1 ORDER BY id DESC LIMIT ?2)",
            params![app, HISTORY],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// After a crash: builds left `running` are queued again, once (marked resumed); ones already resumed once are
    /// failed ("interrupted twice"), so a build that kills the service cannot loop.
    pub fn recover(&mut self) -> Result<Vec<Interrupted>, StateError> {
        let tx = self.db.transaction()?;
        tx.execute(
            "UPDATE builds SET status = 'failed', finished = ?1,
             error = 'interrupted twice: goldenpath serve stopped while it ran, and again after it was resumed'
             WHERE status = 'running' AND resumed = 1",
            params![now()],
        )?;
        let mut out = Vec::new();
        {
            let mut q = tx.prepare(
                "SELECT id, app, reasons, revision FROM builds WHERE status IN ('running', 'queued') ORDER BY id",
            )?;
            let rows = q.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?;
            for row in rows {
                let (id, app, reasons, revision) = row?;
                out.push(Interrupted {
                    id,
                    app,
                    reasons: reason::split(&reasons)?,
                    revision,
                });
            }
        }
        tx.execute(
            "UPDATE builds SET status = 'queued', resumed = 1 WHERE status = 'running'",
            [],
        )?;
        tx.commit()?;
        Ok(out)
    }

    /// The app's builds, newest first.
    pub fn builds(&self, app: &str, limit: i64) -> Result<Vec<Build>, StateError> {
        let mut q = self.db.prepare(
            "SELECT id, app, work, reasons, revision, status, attempt, queued, started, finished, digest, error, resumed
             FROM builds WHERE app = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = q.query_map(params![app, limit], |r| {
            Ok((
                Build {
                    id: r.get(0)?,
                    app: r.get(1)?,
                    work: if r.get::<_, String>(2)? == "rebase" {
                        Work::Rebase
                    } else {
                        Work::Build
                    },
                    reasons: BTreeSet::new(),
                    revision: r.get(4)?,
                    status: BuildStatus::parse(&r.get::<_, String>(5)?),
                    attempt: r.get(6)?,
                    queued: r.get(7)?,
                    started: r.get(8)?,
                    finished: r.get(9)?,
                    digest: r.get(10)?,
                    error: r.get(11)?,
                    resumed: r.get::<_, i64>(12)? != 0,
                },
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut b, reasons) = row?;
            b.reasons = reason::split(&reasons)?;
            out.push(b);
        }
        Ok(out)
    }

    /// A build's log.
    pub fn log(&self, id: i64) -> Result<String, StateError> {
        self.db
            .query_row("SELECT log FROM builds WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or(StateError::NoBuild(id))
    }

    /// Builds per status, for metrics and the status page.
    pub fn count(&self, status: BuildStatus) -> Result<i64, StateError> {
        Ok(self.db.query_row(
            "SELECT COUNT(*) FROM builds WHERE status = ?1",
            params![status.as_str()],
            |r| r.get(0),
        )?)
    }

    /// Records that `app` now runs `digest` at `url` (the previous deployment stopped now).
    pub fn deployed(&mut self, app: &str, digest: &str, url: &str) -> Result<(), StateError> {
        let tx = self.db.transaction()?;
        let t = now();
        tx.execute(
            "UPDATE deployments SET stopped = ?2 WHERE app = ?1 AND stopped IS NULL",
            params![app, t],
        )?;
        tx.execute(
            "INSERT INTO deployments (app, digest, url, started) VALUES (?1, ?2, ?3, ?4)",
            params![app, digest, url, t],
        )?;
        tx.execute(
            "UPDATE apps SET status = 'running', updated = ?2 WHERE name = ?1",
            params![app, t],
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
