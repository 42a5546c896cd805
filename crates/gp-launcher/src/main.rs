//! `/cnb/lifecycle/launcher` (and `/cnb/process/<type>` symlinks to it).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use command_fds::{CommandFdExt, FdMapping};
use gp_cnb::env::{EnvMap, parse_exec_d_output};
use gp_launcher::{
    EXIT_LAUNCH, Invocation, exec_d, launch_env, launch_layers, profile_d, read_metadata, select,
    shell_script,
};

fn main() -> ExitCode {
    match run() {
        Ok(never) => match never {},
        Err(message) => {
            // The reference launcher's wording, which buildpack test suites match on.
            eprintln!("ERROR: failed to launch: {message}");
            ExitCode::from(EXIT_LAUNCH)
        }
    }
}

enum Never {}

fn run() -> Result<Never, String> {
    let mut argv = std::env::args();
    let inv = Invocation {
        argv0: argv.next().unwrap_or_default(),
        args: argv.collect(),
        env: std::env::vars().collect(),
    };
    let layers_dir = inv.layers_dir();
    let metadata = read_metadata(&layers_dir).map_err(|e| e.to_string())?;
    let launch = select(&inv, &metadata).map_err(|e| e.to_string())?;
    let layers = launch_layers(&layers_dir, &metadata);
    let mut env = launch_env(&inv, &metadata, &layers, launch.process_type.as_deref())
        .map_err(|e| e.to_string())?;
    for exe in exec_d(&layers, launch.process_type.as_deref()) {
        let vars = run_exec_d(&exe, &env, &inv.app_dir())?;
        env.extend(vars);
    }
    let mut cmd = if launch.direct {
        let mut c = Command::new(&launch.argv[0]);
        c.args(&launch.argv[1..]);
        c.current_dir(&launch.working_dir);
        c
    } else {
        // Shell strategy: one bash in <app> sources profile.d and .profile, then runs the command line with the
        // arguments as positional parameters.
        let app = inv.app_dir();
        let profiles = profile_d(&layers, launch.process_type.as_deref());
        let script = shell_script(&profiles, &app, &launch.working_dir, &launch.argv[0]);
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(script)
            .arg("launcher")
            .args(&launch.argv[1..]);
        c.current_dir(&app);
        c
    };
    cmd.env_clear().envs(&env);
    let err = cmd.exec();
    Err(format!("cannot start `{}`: {err}", launch.argv[0]))
}

/// Runs one exec.d executable with fd 3 open for its TOML output.
fn run_exec_d(
    exe: &std::path::Path,
    env: &EnvMap,
    app: &std::path::Path,
) -> Result<EnvMap, String> {
    let (mut reader, writer) =
        std::io::pipe().map_err(|e| format!("exec.d `{}`: {e}", exe.display()))?;
    let mut cmd = Command::new(exe);
    cmd.env_clear().envs(env).current_dir(app);
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: OwnedFd::from(writer),
        child_fd: 3,
    }])
    .map_err(|e| format!("exec.d `{}`: {e}", exe.display()))?;
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("exec.d `{}` cannot start: {e}", exe.display()))?;
    drop(cmd); // closes our copy of the pipe's write end
    let mut out = String::new();
    reader
        .read_to_string(&mut out)
        .map_err(|e| format!("exec.d `{}`: {e}", exe.display()))?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("exec.d `{}` failed ({status})", exe.display()));
    }
    parse_exec_d_output(&out).map_err(|e| {
        format!(
            "exec.d `{}` printed invalid TOML on fd 3: {e}",
            exe.display()
        )
    })
}
