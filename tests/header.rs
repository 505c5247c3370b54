//! `include/passt.h` is what build.rs generates (the build that compiled
//! this test just rewrote it), and it compiles as C99 and C++ with warnings
//! as errors.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_header_is_the_generated_one() {
    if !root().join(".git").exists() {
        eprintln!("not a git checkout: nothing to compare with");
        return;
    }
    let out = Command::new("git")
        .args(["diff", "--exit-code", "--", "include/passt.h"])
        .current_dir(root())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "include/passt.h differs from the committed copy: commit the regenerated header\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn compile(compiler: &str, args: &[&str]) {
    let src = "#include \"passt.h\"\nint main(void) { struct passt_config *c = passt_config_new(); passt_config_free(c); return 0; }\n";
    let dir = std::env::temp_dir().join(format!("passt-header-{}-{compiler}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("t.c");
    std::fs::write(&file, src).unwrap();
    let out = Command::new(compiler)
        .args(args)
        .arg("-I")
        .arg(root().join("include"))
        .args(["-Wall", "-Wextra", "-Werror", "-c", "-o"])
        .arg(dir.join("t.o"))
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{compiler} {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn header_compiles_as_c99() {
    compile("cc", &["-std=c99", "-pedantic"]);
}

#[test]
fn header_compiles_as_cpp() {
    compile("g++", &["-std=c++11", "-x", "c++"]);
}
