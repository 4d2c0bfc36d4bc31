//! Generates the prost code for `proto/` with protox, a pure-Rust protobuf compiler, so neither
//! the build nor a contributor needs a system `protoc`. The output is committed (users of
//! `xoscar-wire` compile no code generator) and `--check` fails when it is stale.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Each proto file, with the crate directory that holds its generated module.
const OUTPUTS: [(&str, &str); 2] = [
    ("xoscar/wire/v1/frames.proto", "crates/xoscar-wire/src/generated"),
    ("xoscar/actor/v1/actor.proto", "crates/xoscar-actor/src/generated"),
];

pub fn run(check: bool) -> Result<()> {
    let root = crate::workspace_root();
    let mut stale = Vec::new();
    for (proto, out_dir) in OUTPUTS {
        let scratch = root.join("target/xtask-proto").join(out_dir);
        if scratch.exists() {
            fs::remove_dir_all(&scratch)?;
        }
        fs::create_dir_all(&scratch)?;
        generate(&root.join("proto"), proto, &scratch)?;
        let committed = root.join(out_dir);
        for entry in fs::read_dir(&scratch)? {
            let generated = entry?.path();
            let name = generated.file_name().context("generated file has a name")?;
            let target = committed.join(name);
            let fresh = fs::read(&generated)?;
            if fs::read(&target).ok().as_deref() == Some(fresh.as_slice()) {
                continue;
            }
            if check {
                stale.push(target.display().to_string());
            } else {
                fs::create_dir_all(&committed)?;
                fs::write(&target, fresh)?;
                eprintln!("wrote {}", target.display());
            }
        }
    }
    if !stale.is_empty() {
        bail!("generated code is stale, run `cargo xtask proto`: {}", stale.join(", "));
    }
    eprintln!("proto ok");
    Ok(())
}

fn generate(include: &Path, proto: &str, out_dir: &Path) -> Result<()> {
    let descriptors = protox::compile([proto], [include])
        .map_err(|error| anyhow::anyhow!("{error:?}"))
        .with_context(|| format!("compiling {proto}"))?;
    prost_build::Config::new()
        .out_dir(out_dir)
        // Decoding `bytes` fields from a `Bytes` buffer then slices it instead of copying.
        .bytes(["."])
        .compile_fds(descriptors)
        .with_context(|| format!("generating Rust for {proto}"))
}
