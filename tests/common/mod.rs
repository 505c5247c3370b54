#![allow(dead_code)]
pub mod driver;
pub mod kit;
pub mod netns;
pub mod tempdir;

/// Where cargo put libpasst.so for this build: the test executable lives
/// in `<target>/<profile>/deps/`, and the library one level up.
pub fn lib_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(std::path::Path::parent).expect("<profile>/deps/<exe>").to_path_buf();
    assert!(dir.join("libpasst.so").exists(), "no libpasst.so in {}: run cargo build", dir.display());
    dir
}

/// Whether the tests run as root (effective uid 0): namespaces, taps and
/// the like need it, and the tests that use them say so and pass without.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// `make -C <dir> <target>` (dir relative to the repository) against the
/// library in `lib_dir`, building into `build_dir`; panics with make's
/// output when it fails.
pub fn make(dir: &str, lib_dir: &std::path::Path, build_dir: &std::path::Path, target: &str) {
    let out = std::process::Command::new("make")
        .arg("-C")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .arg(format!("LIBDIR={}", lib_dir.display()))
        .arg(format!("BUILDDIR={}", build_dir.display()))
        .arg(target)
        .output()
        .expect("make runs");
    assert!(
        out.status.success(),
        "make -C {dir} {target} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `examples-c/passt-standalone` built against this build's library into
/// `<lib dir>/c-programs/<subdir>/` (one directory per test binary, so
/// that binaries running in parallel never build into the same place).
pub fn build_standalone(subdir: &str) -> std::path::PathBuf {
    let lib = lib_dir();
    let build = lib.join("c-programs").join(subdir);
    let binary = build.join("passt-standalone");
    make("examples-c", &lib, &build, &binary.to_string_lossy());
    binary
}

/// Waits for `child` at most `limit`; kills it and panics (with what it
/// printed) when it hangs.
pub fn wait_output(mut child: std::process::Child, limit: std::time::Duration, what: &str) -> std::process::Output {
    let start = std::time::Instant::now();
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => return child.wait_with_output().expect("collect output"),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "{what}: still running after {limit:?}\nstdout: {}\nstderr: {}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}

/// Runs `cmd` to completion (stdin from /dev/null, output collected)
/// within `limit`: [`wait_output`].
pub fn run_limited(cmd: &mut std::process::Command, limit: std::time::Duration) -> std::process::Output {
    use std::process::Stdio;
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    wait_output(child, limit, &what)
}

/// `frame` as a QEMU stream connection carries it: its length (4 bytes,
/// big-endian), then the frame.
pub fn stream_record(frame: &[u8]) -> Vec<u8> {
    let mut b = (frame.len() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(frame);
    b
}

/// The complete records at the front of a QEMU stream's bytes (the
/// inverse of [`stream_record`]), and how many bytes they take: a record
/// cut short by the end stays for the next read.
pub fn split_stream_records(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let (mut frames, mut at) = (Vec::new(), 0);
    while let Some(len) = bytes.get(at..at + 4).map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize) {
        let Some(frame) = bytes.get(at + 4..at + 4 + len) else { break };
        frames.push(frame);
        at += 4 + len;
    }
    (frames, at)
}

/// Reads one frame from a QEMU stream connection (4-byte big-endian
/// length, then the frame).
pub fn recv_stream_frame(s: &mut std::os::unix::net::UnixStream) -> Vec<u8> {
    use std::io::Read;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut f = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut f).unwrap();
    f
}
