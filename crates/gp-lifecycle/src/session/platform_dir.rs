//! The platform directory buildpacks read: `env/` (the request's variables, then project.toml's) and the CA
//! certificates as a `ca-certificates` binding, with the variables common tools read them from.

use std::path::Path;

use super::project::Project;
use super::{BuildRequest, SessionError};

/// Variables that point tools at the CA bundle (OpenSSL, pip, requests, Node.js).
const CA_VARIABLES: [&str; 4] = [
    "SSL_CERT_FILE",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
];

/// Writes `platform`; `seen_as` is where buildpacks see it (`/platform` in the sandbox).
pub(super) fn write(
    request: &BuildRequest,
    project: &Project,
    platform: &Path,
    seen_as: &Path,
) -> Result<(), SessionError> {
    let env = platform.join("env");
    fs_err::create_dir_all(&env).map_err(SessionError::io("create", &env))?;
    let put = |file: &Path, value: &[u8]| {
        fs_err::write(file, value).map_err(SessionError::io("write", file))
    };
    for (k, v) in &request.env {
        put(&env.join(k), v.as_bytes())?;
    }
    if let Some(ca) = &request.ca_certs {
        let binding = platform.join("bindings/ca-certificates");
        fs_err::create_dir_all(&binding).map_err(SessionError::io("create", &binding))?;
        put(&binding.join("type"), b"ca-certificates")?;
        fs_err::copy(ca, binding.join("ca.crt"))
            .map_err(|e| SessionError::Request(format!("`--ca-certs {}`: {e}", ca.display())))?;
        let file = seen_as.join("bindings/ca-certificates/ca.crt");
        for var in CA_VARIABLES {
            put(&env.join(var), file.as_os_str().as_encoded_bytes())?;
        }
    }
    for (k, v) in &project.env {
        let file = env.join(k);
        if !file.exists() {
            put(&file, v.as_bytes())?; // the request's variables win over project.toml
        }
    }
    Ok(())
}
