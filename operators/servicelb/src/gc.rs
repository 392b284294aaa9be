//! The DaemonSet side: a svclb DaemonSet whose Service is gone, is no
//! longer a LoadBalancer (or now names another class), or was recreated
//! under a new UID is deleted. Triggered by the DaemonSet and by every
//! change of a Service (deletions included), so no finalizer is needed.

use std::sync::Arc;

use k3r_reconciler::events::{Type, publish};
use k3r_reconciler::{Builder, Next, ObjectRef, Runtime};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use kube::runtime::events::Recorder;
use kube::runtime::watcher;

use crate::daemonset::{self, NODE_SELECTOR_LABEL, SVC_NAME_LABEL, SVC_NAMESPACE_LABEL};
use crate::{Config, Error, is_ours};

pub const NAME: &str = "servicelb-gc";

pub struct Context {
    client: kube::Client,
    daemonsets: Api<DaemonSet>,
    recorder: Recorder,
}

pub async fn run(runtime: Runtime, config: Config) {
    let daemonsets: Api<DaemonSet> = Api::namespaced(runtime.client.clone(), &config.namespace);
    let namespace = config.namespace.clone();
    Builder::new(
        NAME,
        &runtime,
        daemonsets.clone(),
        watcher::Config::default().labels(NODE_SELECTOR_LABEL),
    )
    .watches(
        Api::<Service>::all(runtime.client.clone()),
        watcher::Config::default(),
        move |service: Service| Some(ObjectRef::new(&daemonset::name(&service)).within(&namespace)),
    )
    .run(
        reconcile,
        Arc::new(Context {
            client: runtime.client.clone(),
            daemonsets,
            recorder: runtime.recorder(crate::NAME),
        }),
    )
    .await;
}

pub async fn reconcile(ds: Arc<DaemonSet>, context: Arc<Context>) -> Result<Next, Error> {
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Next::Done);
    }
    let (Some(name), Some(namespace)) = (
        ds.labels().get(SVC_NAME_LABEL),
        ds.labels().get(SVC_NAMESPACE_LABEL),
    ) else {
        return Ok(Next::Done);
    };
    let services: Api<Service> = Api::namespaced(context.client.clone(), namespace);
    let service = services
        .get_opt(name)
        .await
        .map_err(Error::api(format!("reading Service {namespace}/{name}")))?;
    let wanted = service
        .as_ref()
        .is_some_and(|s| is_ours(s) && daemonset::name(s) == ds.name_any());
    if wanted {
        return Ok(Next::Done);
    }
    match &service {
        Some(service) => {
            delete(
                &context.daemonsets,
                &ds.name_any(),
                &context.recorder,
                service,
            )
            .await?
        }
        None => {
            delete_daemonset(&context.daemonsets, &ds.name_any()).await?;
            tracing::info!(daemonset = %ds.name_any(), service = %format!("{namespace}/{name}"), "svclb DaemonSet of a deleted Service removed");
        }
    }
    Ok(Next::Done)
}

fn ignore_not_found(err: kube::Error) -> Result<(), kube::Error> {
    match err {
        kube::Error::Api(status) if status.code == 404 => Ok(()),
        other => Err(other),
    }
}

/// Deletes a svclb DaemonSet (already gone is fine).
async fn delete_daemonset(daemonsets: &Api<DaemonSet>, name: &str) -> Result<(), Error> {
    daemonsets
        .delete(name, &DeleteParams::background())
        .await
        .map(|_| ())
        .or_else(ignore_not_found)
        .map_err(Error::api(format!("deleting DaemonSet {name}")))
}

/// Deletes a svclb DaemonSet of `service` (k3s's DeletedDaemonSet Event).
pub async fn delete(
    daemonsets: &Api<DaemonSet>,
    name: &str,
    recorder: &Recorder,
    service: &Service,
) -> Result<(), Error> {
    delete_daemonset(daemonsets, name).await?;
    let namespace = daemonsets.namespace().unwrap_or_default();
    tracing::info!(service = %k3r_reconciler::key(service), daemonset = %name, "svclb DaemonSet removed");
    publish(
        recorder,
        service,
        Type::Normal,
        "DeletedDaemonSet",
        &format!("Deleted LoadBalancer DaemonSet {namespace}/{name}"),
    )
    .await;
    Ok(())
}
