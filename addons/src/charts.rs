//! Charts k3r packages, embedded file by file and archived on demand into
//! a byte-for-byte reproducible .tgz (fixed times, owners and order), so
//! the HelmChart that carries it never changes between starts.

use std::io::Write;

/// The traefik chart (addons/charts/traefik).
pub const TRAEFIK: &[(&str, &[u8])] = &[
    (
        "traefik/Chart.yaml",
        include_bytes!("../charts/traefik/Chart.yaml"),
    ),
    (
        "traefik/values.yaml",
        include_bytes!("../charts/traefik/values.yaml"),
    ),
    (
        "traefik/templates/NOTES.txt",
        include_bytes!("../charts/traefik/templates/NOTES.txt"),
    ),
    (
        "traefik/templates/_helpers.tpl",
        include_bytes!("../charts/traefik/templates/_helpers.tpl"),
    ),
    (
        "traefik/templates/deployment.yaml",
        include_bytes!("../charts/traefik/templates/deployment.yaml"),
    ),
    (
        "traefik/templates/ingressclass.yaml",
        include_bytes!("../charts/traefik/templates/ingressclass.yaml"),
    ),
    (
        "traefik/templates/rbac.yaml",
        include_bytes!("../charts/traefik/templates/rbac.yaml"),
    ),
    (
        "traefik/templates/service.yaml",
        include_bytes!("../charts/traefik/templates/service.yaml"),
    ),
];

/// A gzip'd tar of `files`, identical for identical input.
pub fn archive(files: &[(&str, &[u8])]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut sorted: Vec<&(&str, &[u8])> = files.iter().collect();
    sorted.sort_by_key(|(path, _)| *path);
    for (path, contents) in sorted {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        tar.append_data(&mut header, path, *contents)?;
    }
    let tar = tar.into_inner()?;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar)?;
    gz.finish()
}
