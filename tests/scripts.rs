//! The setup scripts' way to root (`scripts/as-root.sh`), run by bash as
//! the README's commands run it: as root the script goes on; as another
//! user without sudo (a fresh Debian machine has none) it stops with a
//! message saying to run it as root; with sudo it runs itself again
//! through sudo, keeping the caller's environment, arguments, PATH and
//! rustup home, with root's HOME and without CARGO_HOME. The sudo here is a
//! stand-in that records how it was called (becoming root is sudo's job,
//! not ours). The non-root cases run as `nobody` when the tests are root.

mod common;

use common::is_root;
use common::tempdir::TempDir;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const NOBODY: u32 = 65534;

/// The scripts that need root, each of which must reach as-root.sh before
/// it changes directory (the re-run uses `$0` as it was given).
const ROOT_SCRIPTS: [&str; 4] = ["scripts/test.sh", "scripts/demo.sh", "scripts/install-deps.sh", "bench/run.sh"];

fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).expect("write script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// A directory readable by `nobody` with as-root.sh, a probe script that
/// uses it as scripts/test.sh does, and a recording `sudo` in `fakebin`.
fn setup() -> TempDir {
    let dir = TempDir::new("as-root");
    fs::create_dir(dir.join("scripts")).unwrap();
    fs::copy(Path::new(ROOT).join("scripts/as-root.sh"), dir.join("scripts/as-root.sh")).unwrap();
    let marker = dir.join("probe-ran");
    write_executable(
        &dir.join("scripts/probe.sh"),
        &format!(
            "#!/usr/bin/env bash\nset -euo pipefail\nsource \"$(dirname \"$0\")/as-root.sh\"\n\
             cd \"$(dirname \"$0\")/..\"\necho \"$(id -u) $*\" > {}\n",
            marker.display()
        ),
    );
    fs::create_dir(dir.join("fakebin")).unwrap();
    let record = dir.join("sudo-args");
    write_executable(
        &dir.join("fakebin/sudo"),
        &format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n", record.display()),
    );
    let home = dir.join("home");
    fs::create_dir_all(home.join(".rustup")).unwrap();
    for d in [dir.path().to_path_buf(), dir.join("scripts"), dir.join("fakebin"), home.clone(), home.join(".rustup")] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    dir
}

/// Runs the probe with `args` as `nobody` (or as ourselves when we are not
/// root), with PATH `path` and a few variables a user would have.
fn run_probe_unprivileged(dir: &TempDir, path: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("/bin/bash");
    cmd.arg(dir.join("scripts/probe.sh"))
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.join("home"))
        .env("CARGO_HOME", dir.join("home/.cargo"))
        .env("RUNS", "5");
    if is_root() {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    cmd.output().expect("run bash")
}

fn root_home() -> String {
    let passwd = fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let root = passwd.lines().find(|l| l.starts_with("root:")).expect("root in /etc/passwd");
    root.split(':').nth(5).expect("home field").to_string()
}

#[test]
fn without_root_and_without_sudo_it_says_to_run_as_root() {
    let dir = setup();
    // Only the tools the check itself uses: no sudo to be found.
    let tools = dir.join("tools");
    fs::create_dir(&tools).unwrap();
    for t in ["id", "basename", "dirname"] {
        let real = ["/usr/bin", "/bin"].iter().map(|d| Path::new(d).join(t)).find(|p| p.exists()).expect(t);
        std::os::unix::fs::symlink(real, tools.join(t)).unwrap();
    }
    let out = run_probe_unprivileged(&dir, tools.to_str().unwrap(), &["x"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("sudo is not installed: run it as root"), "stderr: {stderr}");
    assert!(!dir.join("probe-ran").exists(), "the script went on without root");
}

#[test]
fn without_root_it_runs_itself_again_through_sudo_keeping_the_toolchain() {
    let dir = setup();
    let path = format!("{}:/usr/bin:/bin", dir.join("fakebin").display());
    let out = run_probe_unprivileged(&dir, &path, &["one", "two words"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("needs root: running it through sudo"), "stderr: {stderr}");
    assert!(!dir.join("probe-ran").exists(), "the script went on without root instead of handing over to sudo");
    let args = fs::read_to_string(dir.join("sudo-args")).expect("sudo was not called");
    let args: Vec<&str> = args.lines().collect();
    let probe = dir.join("scripts/probe.sh");
    let expected = [
        "--preserve-env".to_string(),
        "env".into(),
        "-u".into(),
        "CARGO_HOME".into(),
        format!("HOME={}", root_home()),
        format!("PATH={path}"),
        format!("RUSTUP_HOME={}", dir.join("home/.rustup").display()),
        "bash".into(),
        probe.display().to_string(),
        "one".into(),
        "two words".into(),
    ];
    assert_eq!(args, expected);
}

#[test]
fn as_root_the_script_goes_on_without_sudo() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = setup();
    let path = format!("{}:/usr/bin:/bin", dir.join("fakebin").display());
    let out = Command::new("/bin/bash")
        .arg(dir.join("scripts/probe.sh"))
        .arg("arg")
        .env("PATH", path)
        .output()
        .expect("run bash");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.join("sudo-args").exists(), "sudo was called as root");
    assert_eq!(fs::read_to_string(dir.join("probe-ran")).unwrap(), "0 arg\n");
}

#[test]
fn every_script_that_needs_root_asks_for_it_before_changing_directory() {
    for script in ROOT_SCRIPTS {
        let text = fs::read_to_string(Path::new(ROOT).join(script)).expect(script);
        let lines: Vec<&str> = text.lines().collect();
        let source = lines.iter().position(|l| l.starts_with("source ") && l.contains("as-root.sh"));
        let cd = lines.iter().position(|l| l.starts_with("cd "));
        let source = source.unwrap_or_else(|| panic!("{script} does not source as-root.sh"));
        if let Some(cd) = cd {
            assert!(source < cd, "{script} changes directory (line {}) before as-root.sh (line {})", cd + 1, source + 1);
        }
        // Arguments are still all there: nothing shifted them before.
        assert!(
            !lines[..source].iter().any(|l| l.trim_start().starts_with("shift")),
            "{script} shifts its arguments before as-root.sh"
        );
    }
}
