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

/// `examples-c/passt-standalone` built against this build's library into
/// `<lib dir>/c-programs/<subdir>/` (one directory per test binary, so
/// that binaries running in parallel never build into the same place).
pub fn build_standalone(subdir: &str) -> std::path::PathBuf {
    let lib = lib_dir();
    let build = lib.join("c-programs").join(subdir);
    let out = std::process::Command::new("make")
        .arg("-C")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c"))
        .arg(format!("LIBDIR={}", lib.display()))
        .arg(format!("BUILDDIR={}", build.display()))
        .arg(build.join("passt-standalone"))
        .output()
        .expect("make runs");
    assert!(
        out.status.success(),
        "make passt-standalone: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    build.join("passt-standalone")
}
