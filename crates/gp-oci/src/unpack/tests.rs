use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use tar::Header;

use super::*;

enum T<'a> {
    File(&'a str, &'a str),
    Mode(&'a str, &'a str, u32),
    Dir(&'a str),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

/// Builds a tar with raw names (the `tar` crate's own checks would refuse the hostile ones).
fn tar_of(entries: &[T<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = Header::new_ustar();
        let (name, kind, data, link, mode): (&str, EntryType, &[u8], Option<&str>, u32) = match e {
            T::File(n, d) => (n, EntryType::Regular, d.as_bytes(), None, 0o644),
            T::Mode(n, d, mode) => (n, EntryType::Regular, d.as_bytes(), None, *mode),
            T::Dir(n) => (n, EntryType::Directory, b"", None, 0o755),
            T::Sym(n, t) => (n, EntryType::Symlink, b"", Some(t), 0o777),
            T::Hard(n, t) => (n, EntryType::Link, b"", Some(t), 0o644),
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Everything below `dir`, byte for byte: kind, mode, owner, contents or link target.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs_err::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs_err::symlink_metadata(&p).unwrap();
            let what = if m.is_symlink() {
                format!("link {}", fs_err::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                todo.push(p.clone());
                "dir".to_owned()
            } else {
                format!("file {:?}", fs_err::read(&p).unwrap())
            };
            let key = p.strip_prefix(dir).unwrap().to_path_buf();
            out.insert(
                key,
                format!("{what} {:o} {}:{}", m.mode(), m.uid(), m.gid()),
            );
        }
    }
    out
}

/// A scratch area with sentinels: `base/precious/keep`, `base/secret` and an empty `base/work/` to unpack into.
fn scratch() -> tempfile::TempDir {
    let base = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(base.path().join("precious")).unwrap();
    fs_err::write(base.path().join("precious/keep"), "precious").unwrap();
    fs_err::write(base.path().join("secret"), "secret").unwrap();
    fs_err::create_dir_all(base.path().join("work")).unwrap();
    base
}

fn unpack_in(base: &Path, layers: &[Vec<u8>]) -> Result<(), UnpackError> {
    unpack_layers(layers.iter().map(|l| Ok(&l[..])), &base.join("work/rootfs"))
}

fn unpack(layers: &[Vec<u8>]) -> (tempfile::TempDir, Result<(), UnpackError>) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("rootfs");
    let r = unpack_layers(layers.iter().map(|l| Ok(&l[..])), &dest);
    (tmp, r)
}

/// Unpacks `layers`, which must be refused with `message`, leaving everything outside the target as it was.
fn refused(layers: &[Vec<u8>], message: &str) {
    let base = scratch();
    let before = snapshot(base.path());
    let e = unpack_in(base.path(), layers).unwrap_err();
    assert_eq!(e.to_string(), message);
    assert_eq!(snapshot(base.path()), before);
}

const REFUSED: &str = "; the layer is refused: rebuild the image or archive without it";

#[test]
fn applies_layers_and_whiteouts() {
    let l1 = tar_of(&[
        T::Dir("etc/"),
        T::File("etc/a", "1"),
        T::File("etc/b", "2"),
        T::Dir("opt/"),
        T::File("opt/x", "x"),
    ]);
    let l2 = tar_of(&[
        T::File("etc/.wh.a", ""),
        T::File("opt/.wh..wh..opq", ""),
        T::File("opt/y", "y"),
        T::Sym("link", "/etc/b"),
    ]);
    let (tmp, r) = unpack(&[l1, l2]);
    r.unwrap();
    let root = tmp.path().join("rootfs");
    assert!(!root.join("etc/a").exists());
    assert_eq!(fs_err::read_to_string(root.join("etc/b")).unwrap(), "2");
    assert!(!root.join("opt/x").exists());
    assert!(root.join("opt/y").exists());
    assert_eq!(
        fs_err::read_link(root.join("link")).unwrap(),
        Path::new("/etc/b")
    );
    let mode = fs_err::metadata(&root).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o7777,
        0o755,
        "the root is readable by the build's user"
    );
}

#[test]
fn refuses_hostile_entries_and_leaves_nothing() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (tar_of(&[T::File("../evil", "x")]), "`..`"),
        (tar_of(&[T::File("/etc/evil", "x")]), "absolute"),
        (tar_of(&[T::Sym("up", "../../etc")]), "points outside"),
        (
            tar_of(&[T::Sym("etc", "/etc"), T::File("etc/passwd", "x")]),
            "through a symlink",
        ),
        (tar_of(&[T::Hard("h", "../../etc/passwd")]), "hard link"),
    ];
    for (layer, want) in cases {
        let (tmp, r) = unpack(&[layer]);
        let e = r.unwrap_err().to_string();
        assert!(e.contains(want), "{e} (wanted {want})");
        let left: Vec<_> = fs_err::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[test]
fn a_whiteout_of_dot_dot_is_refused_and_removes_nothing() {
    for (entry, hidden) in [
        (".wh...", ".."),
        ("a/.wh...", ".."),
        (".wh..", "."),
        ("a/.wh.", ""),
    ] {
        refused(
            &[tar_of(&[T::Dir("a/"), T::File(entry, "")])],
            &format!(
                "layer entry `{entry}` is a whiteout of `{hidden}`, which is not a name in its directory (whiteouts are `.wh.` and one file name){REFUSED}"
            ),
        );
    }
}

#[test]
fn a_whiteout_of_dot_dot_in_an_archive_spares_its_surroundings() {
    // A buildpack archive is unpacked with `unpack_layer` straight into a fresh directory of `$TMPDIR`.
    let base = scratch();
    let target = base.path().join("work");
    let before = snapshot(base.path());
    let e = unpack_layer(&tar_of(&[T::File(".wh...", "")])[..], &target).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "layer entry `.wh...` is a whiteout of `..`, which is not a name in its directory (whiteouts are `.wh.` and one file name){REFUSED}"
        )
    );
    assert_eq!(snapshot(base.path()), before);
}

#[test]
fn a_chain_of_relative_links_that_climbs_out_is_refused() {
    let out = format!("layer entry `x` is a symlink that points outside the root{REFUSED}");
    refused(
        &[tar_of(&[
            T::Dir("d/"),
            T::Sym("d/up", ".."),
            T::Sym("x", "d/up/d/up/d/up/../../precious"),
        ])],
        &out,
    );
    // Across layers too.
    refused(
        &[
            tar_of(&[T::Dir("d/"), T::Sym("d/up", "..")]),
            tar_of(&[T::Sym("x", "d/up/d/up/../precious")]),
        ],
        &out,
    );
    // Through an absolute link, which resolves from the root.
    refused(
        &[tar_of(&[
            T::Sym("top", "/"),
            T::Sym("x", "top/../precious"),
        ])],
        &out,
    );
    // A link that loops.
    refused(
        &[tar_of(&[
            T::Sym("a", "b"),
            T::Sym("b", "a"),
            T::Sym("x", "a/f"),
        ])],
        &format!(
            "layer entry `x` is a symlink whose target passes through more than 40 links{REFUSED}"
        ),
    );
}

#[test]
fn links_that_stay_inside_are_kept() {
    let base = scratch();
    unpack_in(
        base.path(),
        &[tar_of(&[
            T::Dir("d/"),
            T::Sym("d/up", ".."),
            T::Sym("x", "d/up/d/up/d"),
            T::Sym("etc", "/etc"),
            T::Sym("dangling", "missing/../d"),
        ])],
    )
    .unwrap();
    let root = base.path().join("work/rootfs");
    assert_eq!(
        fs_err::read_link(root.join("x")).unwrap(),
        Path::new("d/up/d/up/d")
    );
    assert_eq!(
        fs_err::read_link(root.join("etc")).unwrap(),
        Path::new("/etc")
    );
}

#[test]
fn nothing_is_written_or_linked_through_an_absolute_link() {
    let base = scratch();
    let precious = base.path().join("precious");
    let p = precious.to_str().unwrap();
    let layer = |second: T<'_>| vec![tar_of(&[T::Sym("x", p)]), tar_of(&[second])];
    refused(
        &layer(T::File("x/keep", "overwritten")),
        &format!("layer entry `x/keep` would be written through a symlink (`x`){REFUSED}"),
    );
    refused(
        &layer(T::Dir("x/new/")),
        &format!("layer entry `x/new/` would be written through a symlink (`x`){REFUSED}"),
    );
    refused(
        &layer(T::File("x/.wh.keep", "")),
        &format!("layer entry `x/.wh.keep` would be written through a symlink (`x`){REFUSED}"),
    );
    refused(
        &layer(T::File("x/.wh..wh..opq", "")),
        &format!("layer entry `x/.wh..wh..opq` would be written through a symlink (`x`){REFUSED}"),
    );
    refused(
        &layer(T::Hard("h", "x/keep")),
        &format!("layer entry `h` is a hard link through a symlink or a file{REFUSED}"),
    );
    refused(
        &layer(T::Hard("h", "x")),
        &format!("layer entry `h` is a hard link to a symlink{REFUSED}"),
    );
}

#[test]
fn set_id_bits_are_kept_as_root_only() {
    let base = scratch();
    unpack_in(
        base.path(),
        &[tar_of(&[
            T::Mode("su", "x", 0o4755),
            T::Mode("sg", "x", 0o2755),
            T::Hard("su-link", "su"),
        ])],
    )
    .unwrap();
    let mode = |n: &str| {
        fs_err::metadata(base.path().join("work/rootfs").join(n))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    if is_root() {
        assert_eq!(
            (mode("su"), mode("sg"), mode("su-link")),
            (0o4755, 0o2755, 0o4755)
        );
    } else {
        assert_eq!(
            (mode("su"), mode("sg"), mode("su-link")),
            (0o755, 0o755, 0o755)
        );
    }
}

#[test]
fn a_planted_temporary_directory_is_neither_reused_nor_followed() {
    let base = scratch();
    let planted = base
        .path()
        .join(format!("work/.rootfs.unpacking-{}", std::process::id()));
    fs_err::os::unix::fs::symlink(base.path().join("precious"), &planted).unwrap();
    let before = snapshot(base.path());
    unpack_in(base.path(), &[tar_of(&[T::File("keep", "overwritten")])]).unwrap();
    let mut after = snapshot(base.path());
    let root = base.path().join("work/rootfs");
    assert_eq!(
        fs_err::read_to_string(root.join("keep")).unwrap(),
        "overwritten"
    );
    after.retain(|p, _| !p.starts_with("work/rootfs"));
    assert_eq!(after, before);
}

#[test]
fn a_dangling_link_at_the_target_is_not_followed() {
    let base = scratch();
    let dest = base.path().join("work/rootfs");
    fs_err::os::unix::fs::symlink(base.path().join("elsewhere"), &dest).unwrap();
    let before = snapshot(base.path());
    let e = unpack_in(base.path(), &[tar_of(&[T::File("f", "x")])]).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot write `{}`: the target directory exists; choose a new one",
            dest.display()
        )
    );
    assert_eq!(snapshot(base.path()), before);
}

#[test]
fn long_and_control_character_names_are_excerpted() {
    let long = "a".repeat(MAX_NAME_BYTES + 1);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_size(0);
    b.append_data(&mut h, &long, &b""[..]).unwrap();
    let e = unpack_layer(
        &b.into_inner().unwrap()[..],
        tempfile::tempdir().unwrap().path(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        format!(
            "layer entry `{}… (4097 bytes in all)` has a name of 4097 bytes; entry names are at most 4096 bytes{REFUSED}",
            "a".repeat(crate::safe_fs::EXCERPT_CHARS)
        )
    );
    refused(
        &[tar_of(&[T::File("\u{1b}[2J/../x", "")])],
        &format!(
            "layer entry `\\u{{1b}}[2J/../x` contains `..`, which could write outside the root{REFUSED}"
        ),
    );
}

#[test]
fn layers_whose_bytes_are_not_their_media_type_are_named() {
    let tar = tar_of(&[T::File("f", "x")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let d = Digest::of(&gz);
    let plain = "application/vnd.oci.image.layer.v1.tar";
    let gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    let msg = |mt: &str, found: &str| {
        format!(
            "layer `{d}` is declared `{mt}` but its bytes are {found}; fix the media type in the image's manifest or push the layer again"
        )
    };
    assert_eq!(
        check_declared(&d, plain, &gz).unwrap_err().to_string(),
        msg(plain, "gzip-compressed")
    );
    assert_eq!(
        check_declared(&d, plain, b"{\"not\": \"a tar\"}")
            .unwrap_err()
            .to_string(),
        msg(plain, "not a tar archive")
    );
    assert_eq!(
        check_declared(&d, gzip, &tar).unwrap_err().to_string(),
        msg(gzip, "an uncompressed tar")
    );
    check_declared(&d, plain, &tar).unwrap();
    check_declared(&d, gzip, &gz).unwrap();
    check_declared(&d, plain, &[0; 1024]).unwrap();
    check_declared(&d, plain, b"").unwrap();
}

#[test]
fn devices_are_skipped_and_aufs_metadata_ignored() {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind) in [("dev/null", EntryType::Char), ("fifo", EntryType::Fifo)] {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o666);
        b.append_data(&mut h, name, &b""[..]).unwrap();
    }
    let devices = b.into_inner().unwrap();
    let base = scratch();
    unpack_in(
        base.path(),
        &[
            devices,
            tar_of(&[T::File(".wh..wh.plnk", ""), T::File("f", "x")]),
        ],
    )
    .unwrap();
    let root = base.path().join("work/rootfs");
    assert!(root.join("dev").is_dir());
    assert!(!root.join("dev/null").exists());
    assert!(!root.join("fifo").exists());
    assert!(!root.join(".wh..wh.plnk").exists());
}

#[test]
fn an_overlay_layer_keeps_its_whiteouts_as_overlayfs_does() {
    if !is_root() {
        eprintln!("skipped: whiteout devices need root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    unpack_overlay_layer(
        &tar_of(&[T::Dir("opt/"), T::File("opt/x", "x"), T::File("a", "a")])[..],
        &[],
        &lower,
    )
    .unwrap();
    let upper = tmp.path().join("upper");
    unpack_overlay_layer(
        &tar_of(&[T::File(".wh.a", ""), T::File("opt/.wh..wh..opq", "")])[..],
        &[&lower],
        &upper,
    )
    .unwrap();
    let a = fs_err::symlink_metadata(upper.join("a")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &a.file_type()
    ));
    assert_eq!(a.rdev(), 0, "a whiteout is device 0:0");
    let opaque = rustix::fs::getxattr(upper.join("opt"), "trusted.overlay.opaque", &mut [0u8; 4]);
    assert_eq!(opaque.ok(), Some(1));
    // A hard link to a lower layer's file cannot be made in a layer of its own: an error, not a wrong root.
    let e = unpack_overlay_layer(
        &tar_of(&[T::Hard("b", "a")])[..],
        &[&lower],
        &tmp.path().join("linked"),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("which no earlier entry created"),
        "{e}"
    );
    assert!(!tmp.path().join("linked").exists());
}
