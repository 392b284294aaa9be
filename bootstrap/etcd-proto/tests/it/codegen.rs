//! Regenerates the protobuf code and compares it with the checked-in copy.
//! Set K3R_BLESS=1 to overwrite the checked-in files instead.

use std::path::Path;

#[test]
fn generated_code_matches_proto() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let protos = [root.join("proto/kv.proto"), root.join("proto/rpc.proto")];
    let fds = protox::compile(&protos, [root.join("proto")]).expect("proto files compile");
    let out = tempfile::tempdir().expect("tempdir");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(out.path())
        .compile_fds(fds)
        .expect("code generation");
    let gen_dir = root.join("src/gen");
    for name in ["mvccpb.rs", "etcdserverpb.rs"] {
        let fresh = std::fs::read_to_string(out.path().join(name)).expect("generated file");
        let checked_in_path = gen_dir.join(name);
        if std::env::var_os("K3R_BLESS").is_some() {
            std::fs::write(&checked_in_path, &fresh).expect("write generated file");
            continue;
        }
        let checked_in = std::fs::read_to_string(&checked_in_path).unwrap_or_default();
        assert!(
            checked_in == fresh,
            "{} is stale: run `K3R_BLESS=1 cargo test -p k3r-etcd-proto` and commit the result",
            checked_in_path.display()
        );
    }
}
