//! Compiles `proto/postern/v1/link.proto` with the vendored `protoc`, so a fresh
//! machine needs no system protobuf package.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_with_config(config, &["proto/postern/v1/link.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/postern/v1/link.proto");
    Ok(())
}
