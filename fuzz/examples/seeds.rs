//! Writes the seed corpus: `cargo run --release --example seeds` in `fuzz/`
//! (replaces the files it generates in corpus/frames, corpus/stream and corpus/services).

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, seeds) in [
        ("frames", passt_fuzz::seeds::all()),
        ("stream", [passt_fuzz::seeds::all(), passt_fuzz::seeds::stream_only()].concat()),
        ("services", passt_fuzz::seeds::services()),
    ] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, data) in seeds {
            std::fs::write(dir.join(name), data)?;
        }
        println!("wrote {}", dir.display());
    }
    Ok(())
}
