//! Generates `include/passt.h` from `src/ffi.rs` with cbindgen, and sets the
//! shared library's soname. The header is committed; a test checks that the
//! committed copy is what this script writes.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpasst.so.0");

    link_soname();

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let header = crate_dir.join("include").join("passt.h");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        // write_to_file only rewrites the file when its content changes.
        Ok(bindings) => {
            bindings.write_to_file(&header);
        }
        // A syntax error in the crate is reported by rustc itself, better.
        Err(e) => println!("cargo:warning=cbindgen: {e}"),
    }
}

/// Programs linked with `-lpasst` look for the soname, `libpasst.so.0`:
/// put that link next to the library cargo writes, so that they run from
/// the build tree. (OUT_DIR is `<target>/<profile>/build/passt-*/out`.)
fn link_soname() {
    let Ok(out) = std::env::var("OUT_DIR") else { return };
    let Some(profile_dir) = PathBuf::from(out).ancestors().nth(3).map(PathBuf::from) else { return };
    let link = profile_dir.join("libpasst.so.0");
    if std::fs::symlink_metadata(&link).is_err() {
        let _ = std::os::unix::fs::symlink("libpasst.so", &link);
    }
}
