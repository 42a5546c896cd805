//! CNB conformance, end to end through `goldenpath build --sandbox none`: the lifecycle's test buildpacks, written
//! from the Buildpack API 0.12 and Platform API 0.15 specifications, each assert one rule (what a buildpack sees,
//! what survives a rebuild, what the image's labels say). `docs/lifecycle.md` lists which test covers which rule.
//! `target`: the `CNB_TARGET_*` variables; `rebuild`: what a rebuild gets back; `image`: the exported image.

mod image;
mod rebuild;
mod target;

use std::path::{Path, PathBuf};

use gp_oci::image::{ImageConfig, add_layer, read_image, write_image};
use gp_oci::layer::{Entry, Kind, LayerOptions, Source};
use gp_oci::layout::Layout;

/// A run image in a layout at `dir` (tag `run`): one layer with `etc/os-release`, and `labels`.
pub fn run_image(dir: &Path, os_release: &str, labels: &[(&str, &str)]) -> String {
    let layout = Layout::create(dir).unwrap();
    let entries = vec![
        Entry {
            path: "etc".into(),
            kind: Kind::Dir,
            executable: true,
        },
        Entry {
            path: "etc/os-release".into(),
            kind: Kind::File(Source::Bytes(os_release.as_bytes().to_vec())),
            executable: false,
        },
    ];
    let layer = add_layer(&layout, &entries, &LayerOptions::default()).unwrap();
    let config = ImageConfig {
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..ImageConfig::default()
    };
    write_image(&layout, "run", &[layer], &config).unwrap();
    format!("oci:{}:run", dir.display())
}

/// An app with `files` and an order of the one test buildpack `id`.
pub fn app_for(tmp: &Path, id: &str, files: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    let app = tmp.join("app");
    fs_err::create_dir_all(&app).unwrap();
    for (name, text) in files {
        fs_err::write(app.join(name), text).unwrap();
    }
    let order = tmp.join("order.toml");
    fs_err::write(
        &order,
        format!("[[order]]\n[[order.group]]\nid = \"{id}\"\nversion = \"1.0.0\"\n"),
    )
    .unwrap();
    (app, order)
}

pub fn arch() -> &'static str {
    gp_oci::image::host_arch()
}

/// The one line of `out` that starts with `[<id>] <prefix>`, without the buildpack prefix.
pub fn line<'a>(out: &'a str, id: &str, prefix: &str) -> &'a str {
    let start = format!("[{id}] {prefix}");
    out.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("[{id}] "))
                .filter(|_| l.starts_with(&start))
        })
        .unwrap_or_else(|| panic!("no line `{start}` in:\n{out}"))
}

/// A label of the image tagged `tag` in the layout at `dir`, as JSON when it parses.
pub fn label(dir: &Path, tag: &str, key: &str) -> Option<String> {
    let layout = Layout::open(dir).unwrap();
    let desc = layout.resolve(Some(tag)).unwrap();
    let img = read_image(&layout, &desc).unwrap();
    img.config.label(key).map(str::to_owned)
}
