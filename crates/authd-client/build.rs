//! Compiles authd's protos with protox (pure Rust: nobody installs protoc),
//! client side only, and the example's greeter service, server side only,
//! with its file descriptor set for the example's reflection.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = Path::new("../../proto");
    let mut compiler = protox::Compiler::new([proto_root])?;
    compiler.include_imports(true);
    compiler.open_files([proto_root.join("auth/v1/auth.proto")])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(compiler.file_descriptor_set())?;

    // Only `examples/tonic_service.rs` includes this; generating it here
    // keeps the example a single `cargo run` with no protoc either.
    let mut greeter = protox::Compiler::new(["examples"])?;
    greeter.open_files(["examples/greeter.proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("greeter_descriptor.bin"),
        greeter.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_client(false)
        .compile_fds(greeter.file_descriptor_set())?;

    println!("cargo:rerun-if-changed=../../proto");
    println!("cargo:rerun-if-changed=examples/greeter.proto");
    Ok(())
}
