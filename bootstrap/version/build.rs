// A build with another K3R_VERSION must not reuse this crate's build.
fn main() {
    println!("cargo::rerun-if-env-changed=K3R_VERSION");
}
