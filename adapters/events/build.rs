//! Generates the prost messages of `proto/gatehouse/events/v1/` (messages
//! only: events have no services) with the protoc binary vendored by the
//! `protoc-bin-vendored` crate, so a fresh machine needs nothing installed.
//!
//! `Debug` is not derived: the messages carry link tokens and codes, so
//! `src/pb.rs` implements a redacting `Debug` by hand.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = ["gatehouse/events/v1/events.proto"].map(|f| proto_root.join(f));

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    config.skip_debug(["."]);
    tonic_prost_build::configure().build_server(false).build_client(false).compile_with_config(
        config,
        &files,
        &[proto_root.clone(), protoc_bin_vendored::include_path()?],
    )?;
    println!("cargo:rerun-if-changed={}", proto_root.join("gatehouse/events").display());
    Ok(())
}
