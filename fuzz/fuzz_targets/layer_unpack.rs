//! Layers built from the input through the unpacker: entries of every kind whose names and link targets mix plain
//! names, `.`, `..`, whiteouts and an absolute path to a sentinel directory outside the target. The unpacker may
//! refuse, but must never panic, and the sentinels beside the target must stay exactly as they were.
#![no_main]

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use gp_oci::unpack::unpack_layers;
use libfuzzer_sys::fuzz_target;
use tar::{EntryType, Header};

/// Name components; `@` stands for the absolute path of the sentinel directory.
const PARTS: &[&str] = &[
    "a",
    "b",
    "..",
    ".",
    ".wh..",
    ".wh...",
    ".wh.a",
    ".wh..wh..opq",
    "",
    "@",
    "d",
    ".wh.",
    "keep",
];

struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn path(&mut self, sentinel: &str) -> Option<String> {
        let head = self.byte()?;
        let mut out = if head & 0x80 != 0 {
            "/".to_owned()
        } else {
            String::new()
        };
        for i in 0..=(head % 4) {
            if i > 0 {
                out.push('/');
            }
            let part = PARTS[usize::from(self.byte()?) % PARTS.len()];
            out.push_str(if part == "@" { sentinel } else { part });
        }
        Some(out)
    }
}

fn append(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: EntryType, mode: u32, link: &str) {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(1);
    // Raw names, so `..` and absolute ones get through the builder; longer ones are left out.
    if name.len() > 99 || link.len() > 99 {
        return;
    }
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    if matches!(kind, EntryType::Regular) {
        h.set_cksum();
        let _ = b.append(&h, &b"x"[..]);
    } else {
        h.set_size(0);
        h.set_cksum();
        let _ = b.append(&h, &b""[..]);
    }
}

fn layers(data: &[u8], sentinel: &str) -> Vec<Vec<u8>> {
    if let Some((0, raw)) = data.split_first() {
        return vec![raw.to_vec()];
    }
    let mut input = Input { data };
    let mut out = Vec::new();
    let mut b = tar::Builder::new(Vec::new());
    while let Some(op) = input.byte() {
        let Some(name) = input.path(sentinel) else {
            break;
        };
        match op % 8 {
            0 => append(&mut b, &name, EntryType::Regular, 0o644, ""),
            1 => append(&mut b, &name, EntryType::Directory, 0o755, ""),
            2 | 3 => {
                let Some(link) = input.path(sentinel) else {
                    break;
                };
                let kind = if op % 8 == 2 {
                    EntryType::Symlink
                } else {
                    EntryType::Link
                };
                append(&mut b, &name, kind, 0o777, &link);
            }
            4 => append(&mut b, &name, EntryType::Fifo, 0o644, ""),
            5 => {
                out.push(
                    std::mem::replace(&mut b, tar::Builder::new(Vec::new()))
                        .into_inner()
                        .unwrap_or_default(),
                );
            }
            6 => append(&mut b, &name, EntryType::Regular, 0o4755, ""),
            _ => append(&mut b, &name, EntryType::Char, 0o644, ""),
        }
    }
    out.push(b.into_inner().unwrap_or_default());
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let Ok(base) = tempfile::tempdir() else {
        return;
    };
    let precious = base.path().join("precious");
    let work = base.path().join("work");
    std::fs::create_dir_all(&precious).expect("sentinel");
    std::fs::create_dir_all(&work).expect("work");
    std::fs::write(precious.join("keep"), "precious").expect("sentinel");
    let meta = || {
        [precious.clone(), precious.join("keep")].map(|p| {
            std::fs::symlink_metadata(p)
                .map(|m| (m.mode(), m.uid(), m.gid(), m.nlink()))
                .ok()
        })
    };
    let before = meta();
    let layers = layers(data, &precious.to_string_lossy());
    let _ = unpack_layers(layers.iter().map(|l| Ok(&l[..])), &work.join("rootfs"));
    assert_eq!(names(base.path()), ["precious", "work"]);
    assert_eq!(names(&precious), ["keep"]);
    assert_eq!(
        std::fs::read_to_string(precious.join("keep"))
            .ok()
            .as_deref(),
        Some("precious")
    );
    assert_eq!(meta(), before);
    let left = names(&work);
    assert!(
        left.is_empty() || left == ["rootfs"],
        "left in the target's parent: {left:?}"
    );
});
