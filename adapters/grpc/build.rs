//! Generates the gRPC server and client code from `proto/` with the protoc
//! binary vendored by the `protoc-bin-vendored` crate, so a fresh machine
//! needs nothing installed. Also writes the descriptor set that server
//! reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "gatehouse/v1/audit.proto",
        "gatehouse/v1/auth.proto",
        "gatehouse/v1/mfa.proto",
        "gatehouse/v1/organization.proto",
        "gatehouse/v1/session.proto",
        "gatehouse/v1/token.proto",
        "gatehouse/v1/user.proto",
    ]
    .map(|f| proto_root.join(f));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // prost's codec, but an undecodable message is INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::codec::StrictCodec")
        .file_descriptor_set_path(out_dir.join("gatehouse_descriptor.bin"))
        .compile_with_config(config, &files, &[proto_root.clone(), protoc_bin_vendored::include_path()?])?;
    println!("cargo:rerun-if-changed={}", proto_root.display());
    Ok(())
}
