use super::*;

fn app(name: &str) -> App {
    App {
        name: name.into(),
        contract: format!("dev/{name}.yaml"),
        git_url: Some("file:///src".into()),
        branch: Some("main".into()),
        revision: None,
        image: Some(format!("127.0.0.1:5000/{name}")),
        digest: None,
        run_image: None,
        status: "new".into(),
        built_with: None,
    }
}

#[test]
fn a_build_is_recorded_and_updates_its_app() {
    let d = tempfile::tempdir().unwrap();
    let mut s = State::open(&d.path().join("state.db")).unwrap();
    s.upsert_app(&app("flask")).unwrap();
    let reasons = BTreeSet::from([Reason::Commit]);
    let id = s
        .start_build("flask", Work::Build, &reasons, Some("abc"), 1, None)
        .unwrap();
    s.append_log(id, "line 1\n").unwrap();
    s.append_log(id, "line 2\n").unwrap();
    s.finish_build(
        id,
        Ok(Succeeded {
            digest: "sha256:1",
            run_image: Some("sha256:run"),
            built_with: None,
        }),
    )
    .unwrap();
    let apps = s.apps().unwrap();
    assert_eq!(apps[0].digest.as_deref(), Some("sha256:1"));
    assert_eq!(apps[0].revision.as_deref(), Some("abc"));
    assert_eq!(apps[0].run_image.as_deref(), Some("sha256:run"));
    let b = &s.builds("flask", 10).unwrap()[0];
    assert_eq!(b.status, BuildStatus::Succeeded);
    assert_eq!(b.reasons, reasons);
    assert_eq!(s.log(id).unwrap(), "line 1\nline 2\n");
    assert_eq!(s.count(BuildStatus::Succeeded).unwrap(), 1);
}

#[test]
fn an_interrupted_build_is_resumed_once_in_the_same_record() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("state.db");
    let reasons = BTreeSet::from([Reason::Stack]);
    let id = {
        let s = State::open(&path).unwrap();
        s.upsert_app(&app("a")).unwrap();
        s.start_build("a", Work::Rebase, &reasons, None, 1, None)
            .unwrap()
        // Dropped while running: as after kill -9.
    };
    let mut s = State::open(&path).unwrap();
    let back = s.recover().unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].id, back[0].reasons.clone()), (id, reasons.clone()));
    assert_eq!(
        s.start_build("a", Work::Rebase, &reasons, None, 1, Some(id))
            .unwrap(),
        id
    );
    drop(s);
    // Interrupted again: failed, not queued a third time.
    let mut s = State::open(&path).unwrap();
    assert!(s.recover().unwrap().is_empty());
    let all = s.builds("a", 10).unwrap();
    assert_eq!(all.len(), 1, "one record of it");
    assert_eq!(all[0].status, BuildStatus::Failed);
    assert!(
        all[0]
            .error
            .as_deref()
            .unwrap()
            .contains("interrupted twice")
    );
}

#[test]
fn history_is_pruned_and_a_newer_schema_refused() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("state.db");
    let mut s = State::open(&path).unwrap();
    s.upsert_app(&app("a")).unwrap();
    let reasons = BTreeSet::from([Reason::Trigger]);
    for _ in 0..(HISTORY + 5) {
        let id = s
            .start_build("a", Work::Build, &reasons, None, 1, None)
            .unwrap();
        s.finish_build(id, Err("boom")).unwrap();
    }
    assert_eq!(
        s.builds("a", 1000).unwrap().len(),
        usize::try_from(HISTORY).unwrap()
    );
    s.deployed("a", "sha256:1", "http://127.0.0.1:1/").unwrap();
    assert_eq!(s.apps().unwrap()[0].status, "running");
    s.db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'", [])
        .unwrap();
    drop(s);
    let e = State::open(&path).err().unwrap().to_string();
    assert!(
        e.contains("schema 99") && e.contains("upgrade goldenpath"),
        "{e}"
    );
}

#[test]
fn what_built_an_app_is_kept_and_a_rebase_keeps_it() {
    let d = tempfile::tempdir().unwrap();
    let mut s = State::open(&d.path().join("state.db")).unwrap();
    s.upsert_app(&app("a")).unwrap();
    let with = BuiltWith {
        builder: "sha256:b1".into(),
        lifecycle: Some("0.20.0".into()),
        buildpacks: [("gp/python".to_owned(), "1.2.0".to_owned())].into(),
    };
    let done = |s: &mut State, work, digest, built_with| {
        let id = s
            .start_build("a", work, &BTreeSet::from([Reason::Commit]), None, 1, None)
            .unwrap();
        s.finish_build(
            id,
            Ok(Succeeded {
                digest,
                run_image: None,
                built_with,
            }),
        )
        .unwrap();
    };
    done(&mut s, Work::Build, "sha256:1", Some(&with));
    assert_eq!(s.apps().unwrap()[0].built_with.as_ref(), Some(&with));
    done(&mut s, Work::Rebase, "sha256:2", None);
    let a = &s.apps().unwrap()[0];
    assert_eq!(
        (a.digest.as_deref(), a.built_with.as_ref()),
        (Some("sha256:2"), Some(&with))
    );
}

#[test]
fn a_schema_1_database_is_migrated_with_its_apps() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("state.db");
    {
        // The first schema's apps table, as a database written before the builder was recorded has it.
        let db = Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema', '1');
             CREATE TABLE apps (name TEXT PRIMARY KEY, contract TEXT NOT NULL, git_url TEXT, branch TEXT,
                 revision TEXT, image TEXT, digest TEXT, run_image TEXT, status TEXT NOT NULL DEFAULT 'new',
                 updated REAL NOT NULL);
             INSERT INTO apps (name, contract, digest, status, updated) VALUES ('old', 'dev/old.yaml', 'sha256:1', 'running', 0);",
        )
        .unwrap();
    }
    let s = State::open(&path).unwrap();
    let apps = s.apps().unwrap();
    assert_eq!(apps[0].name, "old");
    assert_eq!(
        (apps[0].digest.as_deref(), apps[0].built_with.as_ref()),
        (Some("sha256:1"), None)
    );
    let v: String =
        s.db.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION.to_string());
    drop(s);
    // Opened again: already migrated, nothing to do.
    assert_eq!(State::open(&path).unwrap().apps().unwrap().len(), 1);
}
