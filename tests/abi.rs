//! The exported symbols are the documented ones (docs/abi.md):
//! `abi/symbols.txt` (one name per line), what `nm -D` finds in the
//! libpasst.so cargo built for this run, and the functions `include/passt.h`
//! declares must be the same set, each declaration with a doc comment.
//! A difference fails with the names that are missing or extra.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// libpasst.so of this build: the test executable lives in
/// `<target dir>/<profile>/deps/`, the library in `<target dir>/<profile>/`.
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile = exe.parent().and_then(Path::parent).expect("<profile>/deps/<exe>");
    let lib = profile.join("libpasst.so");
    assert!(lib.exists(), "no libpasst.so in {}: cargo builds it with the tests", profile.display());
    lib
}

fn documented() -> BTreeSet<String> {
    let path = Path::new(ROOT).join("abi/symbols.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "abi/symbols.txt: keep it sorted, one name per line, no duplicates");
    names.into_iter().collect()
}

/// Every symbol the library defines in its dynamic symbol table.
fn exported() -> BTreeSet<String> {
    let lib = library();
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("nm runs (binutils)");
    assert!(out.status.success(), "nm -D {}: {}", lib.display(), String::from_utf8_lossy(&out.stderr));
    // Lines are "<address> <type> <name>"; the name is the last field.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect()
}

/// The function names `include/passt.h` declares: on unindented lines
/// outside comments, typedefs and preprocessor directives, the identifier
/// right before the first `(`; with whether a doc comment ends right above.
fn declared() -> Vec<(String, bool)> {
    let path = Path::new(ROOT).join("include/passt.h");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        // Top-level declarations start in column 0; indented lines are
        // struct fields, enum constants or wrapped parameter lists.
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        let t = *line;
        if t.starts_with("/*") || t.starts_with('*') || t.starts_with("//") || t.starts_with('#') || t.starts_with("typedef")
        {
            continue;
        }
        let Some(paren) = t.find('(') else { continue };
        let before = t[..paren].trim_end();
        let name: String =
            before.chars().rev().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<Vec<_>>().into_iter().rev().collect();
        if name.is_empty() {
            continue;
        }
        // cbindgen writes the doc comment as a block ending right above.
        let documented = i > 0 && lines[i - 1].trim_end().ends_with("*/");
        found.push((name, documented));
    }
    found
}

/// "missing: a, b / extra: c" for the two directions of a set difference.
fn diff(what_left: &str, left: &BTreeSet<String>, what_right: &str, right: &BTreeSet<String>) -> Option<String> {
    if left == right {
        return None;
    }
    let mut msg = String::new();
    for name in left.difference(right) {
        msg += &format!("- {name}    (in {what_left}, not in {what_right})\n");
    }
    for name in right.difference(left) {
        msg += &format!("+ {name}    (in {what_right}, not in {what_left})\n");
    }
    Some(msg)
}

#[test]
fn exported_symbols_are_the_documented_ones() {
    let doc = documented();
    let exp = exported();
    if let Some(d) = diff("abi/symbols.txt", &doc, "nm -D libpasst.so", &exp) {
        panic!(
            "libpasst.so exports other symbols than abi/symbols.txt lists (see docs/abi.md):\n{d}\
             Only #[no_mangle] functions of src/ffi.rs may be exported, each listed in abi/symbols.txt."
        );
    }
}

#[test]
fn no_rust_symbol_leaks() {
    // Redundant with the list as long as the list is right; this names the
    // usual leaks outright should someone paste nm's output into it.
    let leaks: Vec<String> = exported()
        .into_iter()
        .filter(|n| n.starts_with("_ZN") || n.starts_with("_R") || n.starts_with("rust_") || n.starts_with("__rust"))
        .collect();
    assert!(leaks.is_empty(), "Rust symbols exported from libpasst.so: {leaks:?}");
}

#[test]
fn header_declares_exactly_the_documented_functions() {
    let decl = declared();
    let names: BTreeSet<String> = decl.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names.len(), decl.len(), "a function declared twice in passt.h: {decl:?}");
    assert!(names.contains("passt_new") && names.contains("passt_process"), "header parsing found only {names:?}");
    if let Some(d) = diff("abi/symbols.txt", &documented(), "include/passt.h", &names) {
        panic!("include/passt.h declares other functions than abi/symbols.txt lists (see docs/abi.md):\n{d}");
    }
}

#[test]
fn every_declared_function_has_a_doc_comment() {
    let undocumented: Vec<String> = declared().into_iter().filter(|(_, doc)| !doc).map(|(n, _)| n).collect();
    assert!(
        undocumented.is_empty(),
        "functions without a doc comment in include/passt.h (add `///` docs in src/ffi.rs): {undocumented:?}"
    );
}
