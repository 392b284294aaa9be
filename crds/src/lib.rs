//! Custom resources k3r shares with k3s and its satellites, field for field,
//! so their users' YAML applies unchanged: `k3s.cattle.io/v1` Addon,
//! `helm.cattle.io/v1` HelmChart and HelmChartConfig, and
//! `upgrade.cattle.io/v1` Plan. The CRD YAML in `generated/` is made from
//! these types; `tests/it` fails when the two drift apart.

pub mod addon;
pub mod condition;
pub mod helmchart;
pub mod plan;

pub use addon::Addon;
pub use helmchart::{HelmChart, HelmChartConfig};
pub use plan::Plan;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD k3r installs, in install order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Addon::crd(),
        HelmChart::crd(),
        HelmChartConfig::crd(),
        Plan::crd(),
    ]
}

/// The CRDs as one multi-document YAML stream, as checked in.
pub fn render_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

/// The checked-in CRD YAML, embedded in k3r.
pub const CRDS_YAML: &str = include_str!("../generated/crds.yaml");
