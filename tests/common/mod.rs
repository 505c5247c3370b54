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
