//! Arbitrary bytes as an OCI index or manifest: parsed into descriptors or refused with an error, never a panic.
#![no_main]

use gp_oci::digest::Digest;
use gp_oci::layout::{Kind, parse_children_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let digest = Digest::of(data);
    for kind in [Kind::Index, Kind::Manifest] {
        match parse_children_bytes(data, kind, &digest) {
            // What a walk does next with each child: classify it.
            Ok(children) => children.iter().for_each(|c| {
                let _ = Kind::of_media_type(&c.media_type);
            }),
            Err(e) => drop(e.to_string()),
        }
    }
});
