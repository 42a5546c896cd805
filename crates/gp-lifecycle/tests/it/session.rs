//! The build session as a library call: two builds of different apps at once in one process, sharing one store
//! with a cache each, give the digests each gives alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gp_lifecycle::progress::{Event, Recorder};
use gp_lifecycle::session::{self, BuildRequest, Builder, Cache, Output, Sandbox};
use gp_oci::store::Store;

/// A buildpack that passes when the app has `greeting.txt` and puts it in a launch layer (cached, so the cache
/// has something to keep) with a `web` process.
fn buildpacks(root: &Path) -> PathBuf {
    let bp = root.join("buildpacks/example_greeter/1.0.0");
    fs_err::create_dir_all(bp.join("bin")).unwrap();
    fs_err::write(
        bp.join("buildpack.toml"),
        "api = \"0.10\"\n[buildpack]\nid = \"example/greeter\"\nversion = \"1.0.0\"\n[[stacks]]\nid = \"*\"\n",
    )
    .unwrap();
    let script = |name: &str, body: &str| {
        let path = bp.join("bin").join(name);
        fs_err::write(&path, format!("#!/bin/sh\nset -e\n{body}")).unwrap();
        fs_err::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    };
    script("detect", "[ -f greeting.txt ] || exit 100\n");
    script(
        "build",
        r#"layer="$CNB_LAYERS_DIR/greeting"
mkdir -p "$layer/bin"
printf '#!/bin/sh\ncat /workspace/greeting.txt\n' > "$layer/bin/greet"
chmod +x "$layer/bin/greet"
cp greeting.txt "$layer/greeting.txt"
printf '[types]\nlaunch = true\ncache = true\n' > "$CNB_LAYERS_DIR/greeting.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["greet"]\ndefault = true\n' > "$CNB_LAYERS_DIR/launch.toml"
echo "greeted $(cat greeting.txt)"
"#,
    );
    let order = root.join("order.toml");
    fs_err::write(
        &order,
        "[[order]]\n[[order.group]]\nid = \"example/greeter\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    root.join("buildpacks")
}

fn app(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(dir.join("greeting.txt"), format!("hello from {name}\n")).unwrap();
    dir
}

fn request(root: &Path, app: &Path, tag: &str, cache: &str) -> BuildRequest {
    let launcher = root.join("launcher");
    if !launcher.exists() {
        fs_err::write(&launcher, "#!/bin/sh\nexec \"$@\"\n").unwrap();
    }
    BuildRequest {
        sandbox: Sandbox::None,
        cache: Cache::Dir(root.join(cache)),
        ..BuildRequest::new(
            app,
            Builder::Local {
                buildpacks: buildpacks(root),
                order: root.join("order.toml"),
                launcher,
            },
            Output::Store { tag: tag.into() },
        )
    }
}

#[test]
fn two_builds_at_once_in_one_process_give_the_digests_each_gives_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (a, b) = (app(root, "app-a"), app(root, "app-b"));

    // Alone, each in a store of its own.
    let alone = |app: &Path, name: &str| {
        let store = Store::new(root.join(format!("store-alone-{name}")), &[]);
        let r = request(root, app, name, &format!("cache-alone-{name}"));
        session::build(&store, &r, Arc::new(Recorder::default()))
            .unwrap()
            .digest
    };
    let (want_a, want_b) = (alone(&a, "a"), alone(&b, "b"));
    assert_ne!(want_a, want_b, "different apps make different images");

    // At once, sharing one store, a cache each, each with its own progress.
    let store = Store::new(root.join("store-shared"), &[]);
    let (log_a, log_b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let (got_a, got_b) = std::thread::scope(|s| {
        let ra = request(root, &a, "a", "cache-a");
        let rb = request(root, &b, "b", "cache-b");
        let (store_a, store_b) = (&store, &store);
        let (pa, pb) = (log_a.clone(), log_b.clone());
        let ta = s.spawn(move || session::build(store_a, &ra, pa));
        let tb = s.spawn(move || session::build(store_b, &rb, pb));
        (ta.join().unwrap().unwrap(), tb.join().unwrap().unwrap())
    });
    assert_eq!(got_a.digest, want_a);
    assert_eq!(got_b.digest, want_b);
    assert!(got_a.reference.ends_with(":a"), "{}", got_a.reference);
    assert_eq!(got_a.processes, ["web"]);
    // Each build heard only its own buildpack's output.
    let said = |log: &Recorder| -> Vec<String> {
        log.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Output { line, .. } => Some(line),
                _ => None,
            })
            .collect()
    };
    assert_eq!(said(&log_a), ["greeted hello from app-a"]);
    assert_eq!(said(&log_b), ["greeted hello from app-b"]);
    // Both caches hold their app's layer.
    for c in ["cache-a", "cache-b"] {
        assert!(root.join(c).is_dir(), "{c}");
    }
}

#[test]
fn a_bad_request_is_refused_before_any_work_naming_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = Store::new(root.join("store"), &[]);
    let mut r = request(root, &root.join("missing"), "x", "cache");
    let e = session::build(&store, &r, Arc::new(Recorder::default())).unwrap_err();
    assert!(e.to_string().contains("`--path"), "{e}");
    r.app = app(root, "app");
    r.sandbox = Sandbox::Runc;
    let e = session::build(&store, &r, Arc::new(Recorder::default())).unwrap_err();
    assert!(e.to_string().contains("--builder"), "{e}");
    assert!(!root.join("store").exists(), "nothing was written");
}
