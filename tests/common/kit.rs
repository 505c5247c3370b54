//! The guest kit in ../shared/guest: build an image with a test script,
//! boot it against a UNIX socket or an inherited fd, collect its
//! `GUEST-RESULT` lines.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The kit: `shared/guest` beside the repository (a clone, as in CI) or
/// beside its parent (a worktree under `wt/`), or `PASST_GUEST_KIT`.
pub fn kit_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PASST_GUEST_KIT") {
        return dir.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let beside = root.join("../shared/guest");
    if beside.exists() {
        return beside;
    }
    root.join("../../shared/guest")
}

/// A work directory removed on drop. Mode 1777, as the kit uses, so that a
/// daemon that switched to another user can still remove its files there.
pub struct Work(pub PathBuf);

impl Work {
    pub fn new(tag: &str) -> Work {
        use std::os::unix::fs::PermissionsExt;
        let p = std::env::temp_dir().join(format!("passt-e2e-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o1777)).unwrap();
        Work(p)
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds the guest image in `dir/img` with `script` as its test (socat inside).
pub fn build_image(dir: &Path, script: &str) {
    let script_path = dir.join("test.sh");
    std::fs::write(&script_path, script).unwrap();
    let out = Command::new(kit_dir().join("build-initramfs.sh"))
        .args(["--add-bin", "socat"])
        .arg(dir.join("img"))
        .arg(&script_path)
        .output()
        .expect("build-initramfs.sh runs");
    assert!(out.status.success(), "image: {}", String::from_utf8_lossy(&out.stderr));
}

/// A guest's results: (name, status, detail) per `GUEST-RESULT` line, and
/// the whole console for failure messages.
pub struct GuestRun {
    pub results: Vec<(String, String, String)>,
    pub console: String,
}

impl GuestRun {
    pub fn status(&self, name: &str) -> &str {
        self.results.iter().find(|r| r.0 == name).map(|r| r.1.as_str()).unwrap_or("missing")
    }

    pub fn detail(&self, name: &str) -> &str {
        self.results.iter().find(|r| r.0 == name).map(|r| r.2.as_str()).unwrap_or("")
    }

    /// Panics with the console unless every one of `names` is `ok`.
    pub fn assert_ok(&self, what: &str, names: &[&str]) {
        for name in names {
            assert_eq!(self.status(name), "ok", "{what}: {name}\n{}", self.console);
        }
    }
}

fn collect(out: std::process::Output) -> GuestRun {
    let mut console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    console.push_str(&String::from_utf8_lossy(&out.stderr));
    let results = console
        .lines()
        .filter_map(|l| l.find("GUEST-RESULT ").map(|i| &l[i + 13..]))
        .filter_map(|l| {
            let mut w = l.splitn(3, ' ');
            Some((w.next()?.to_string(), w.next()?.to_string(), w.next().unwrap_or("").to_string()))
        })
        .collect();
    GuestRun { results, console }
}

fn run_guest_command(dir: &Path, append: &str) -> Command {
    let mut c = Command::new(kit_dir().join("run-guest.sh"));
    c.arg("--dir").arg(dir.join("img")).args(["--timeout", "120", "--append", append]);
    c
}

/// Boots the guest (image in `dir/img`) with QEMU's `-netdev stream` on `sock`.
pub fn run_guest(dir: &Path, sock: &Path, append: &str) -> GuestRun {
    let out = run_guest_command(dir, append).arg("--socket").arg(sock).output().expect("run-guest.sh runs");
    collect(out)
}

/// Boots the guest with QEMU's `-netdev socket,fd=5` on `conn` (qrap style,
/// or the other end of a socketpair handed to a daemon).
pub fn run_guest_on(dir: &Path, conn: UnixStream, append: &str) -> GuestRun {
    // The connection goes in as stdin and the shell moves it to fd 5.
    let mut c = Command::new("sh");
    c.args(["-c", "exec 5<&0 </dev/null; exec \"$0\" \"$@\""]).arg(kit_dir().join("run-guest.sh"));
    c.arg("--dir").arg(dir.join("img")).args(["--timeout", "120", "--append", append, "--fd", "5"]);
    let out = c
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(conn)))
        .stderr(Stdio::piped())
        .output()
        .expect("run-guest.sh runs");
    collect(out)
}
