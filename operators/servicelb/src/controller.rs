//! The Service side: a svclb DaemonSet per LoadBalancer Service, kept as
//! the Service and the nodes' labels say, and the Service's ingress
//! status kept to the nodes that serve it. Reads Services, svclb
//! DaemonSets and pods, Nodes and EndpointSlices from caches.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k3r_reconciler::events::{Type, publish};
use k3r_reconciler::{Builder, Next, ObjectRef, Runtime, Store};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::Recorder;
use kube::runtime::watcher;
use serde_json::json;

use crate::daemonset::{
    self, ENABLE_LB_LABEL, NODE_SELECTOR_LABEL, NodeMode, SVC_NAME_LABEL, SVC_NAMESPACE_LABEL,
    Settings,
};
use crate::{Config, Error, is_ours, status};

pub const NAME: &str = "servicelb";
const MANAGER: &str = "k3r-servicelb";
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

pub struct Context {
    client: kube::Client,
    settings: Settings,
    daemonsets: Store<DaemonSet>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    slices: Store<EndpointSlice>,
    recorder: Recorder,
    /// The last "no available nodes" warning per Service UID, so a reason
    /// is reported once, not at every pod update (and again for a new
    /// Service of the same name).
    warned: Mutex<HashMap<String, String>>,
}

fn service_ref(labels: &BTreeMap<String, String>) -> Option<ObjectRef<Service>> {
    let name = labels.get(SVC_NAME_LABEL)?;
    let namespace = labels.get(SVC_NAMESPACE_LABEL)?;
    Some(ObjectRef::new(name).within(namespace))
}

pub async fn run(runtime: Runtime, config: Config) {
    let client = runtime.client.clone();
    let builder = Builder::new(
        NAME,
        &runtime,
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let services = builder.store();
    let (builder, daemonsets) = builder.watches_cached(
        Api::<DaemonSet>::namespaced(client.clone(), &config.namespace),
        watcher::Config::default().labels(NODE_SELECTOR_LABEL),
        |ds: DaemonSet| service_ref(ds.labels()),
    );
    let (builder, pods) = builder.watches_cached(
        Api::<Pod>::namespaced(client.clone(), &config.namespace),
        watcher::Config::default().labels(SVC_NAME_LABEL),
        |pod: Pod| service_ref(pod.labels()),
    );
    // Node labels decide where svclb pods run and node addresses what
    // the status says: a Node change concerns every LoadBalancer Service.
    let (builder, nodes) = builder.watches_cached(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        move |_: Node| {
            services
                .state()
                .iter()
                .filter(|s| is_ours(s))
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        },
    );
    let (builder, slices) = builder.watches_cached(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default().labels(SERVICE_NAME_LABEL),
        |slice: EndpointSlice| {
            let name = slice.labels().get(SERVICE_NAME_LABEL)?.clone();
            Some(ObjectRef::new(&name).within(&slice.namespace()?))
        },
    );
    let context = Context {
        client,
        settings: Settings {
            namespace: config.namespace,
            image: config.image,
        },
        daemonsets,
        pods,
        nodes,
        slices,
        recorder: runtime.recorder(NAME),
        warned: Mutex::default(),
    };
    builder.run(reconcile, Arc::new(context)).await;
}

fn ingress_of(service: &Service) -> Vec<String> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
        .collect()
}

pub async fn reconcile(service: Arc<Service>, context: Arc<Context>) -> Result<Next, Error> {
    let key = k3r_reconciler::key(service.as_ref());
    let uid = service.uid().unwrap_or_else(|| key.clone());
    let namespace = service.namespace().unwrap_or_default();
    let services: Api<Service> = Api::namespaced(context.client.clone(), &namespace);
    if !is_ours(&service) {
        // No longer a LoadBalancer: the addresses it was given go (the gc
        // controller removes its DaemonSet). Another class's status is
        // that implementation's.
        let classless = service
            .spec
            .as_ref()
            .is_some_and(|s| s.load_balancer_class.is_none());
        if classless && !ingress_of(&service).is_empty() {
            set_ingress(&services, &service, &[]).await?;
        }
        context.forget(&uid);
        return Ok(Next::Done);
    }
    if service.metadata.deletion_timestamp.is_some() {
        return Ok(Next::Done);
    }
    let mode = NodeMode {
        allow_list: context
            .nodes
            .state()
            .iter()
            .any(|n| n.labels().contains_key(ENABLE_LB_LABEL)),
    };
    let (desired, skipped) = daemonset::desired(&service, &context.settings, &mode);
    let name = daemonset::name(&service);
    let current = context
        .daemonsets
        .get(&ObjectRef::new(&name).within(&context.settings.namespace));
    let daemonsets: Api<DaemonSet> =
        Api::namespaced(context.client.clone(), &context.settings.namespace);
    let skipped_note = skipped
        .iter()
        .map(|s| s.0.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    match desired {
        Some(wanted) => {
            let wanted_hash = wanted["metadata"]["annotations"][daemonset::SPEC_HASH_ANNOTATION]
                .as_str()
                .map(str::to_string);
            let applied = current
                .as_ref()
                .and_then(|c| daemonset::applied_hash(c.annotations()).map(str::to_string));
            if applied != wanted_hash {
                context.prepare_namespace().await?;
                daemonsets
                    .patch(
                        &name,
                        &PatchParams::apply(MANAGER).force(),
                        &Patch::Apply(&wanted),
                    )
                    .await
                    .map_err(Error::api(format!("applying DaemonSet {name}")))?;
                tracing::info!(service = %key, daemonset = %name, "svclb DaemonSet applied");
                publish(
                    &context.recorder,
                    service.as_ref(),
                    Type::Normal,
                    "AppliedDaemonSet",
                    &format!(
                        "Applied LoadBalancer DaemonSet {}/{name}",
                        context.settings.namespace
                    ),
                )
                .await;
                if !skipped.is_empty() {
                    publish(
                        &context.recorder,
                        service.as_ref(),
                        Type::Warning,
                        "UnsupportedPort",
                        &skipped_note,
                    )
                    .await;
                }
            }
        }
        None => {
            if current.is_some() {
                crate::gc::delete(&daemonsets, &name, &context.recorder, service.as_ref()).await?;
            }
        }
    }
    update_status(&service, &services, &context, &uid, &skipped_note).await?;
    Ok(Next::Done)
}

async fn update_status(
    service: &Service,
    services: &Api<Service>,
    context: &Context,
    uid: &str,
    skipped_note: &str,
) -> Result<(), Error> {
    let key = k3r_reconciler::key(service);
    let name = service.name_any();
    let namespace = service.namespace().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = context
        .pods
        .state()
        .into_iter()
        .filter(|p| {
            p.labels().get(SVC_NAME_LABEL) == Some(&name)
                && p.labels().get(SVC_NAMESPACE_LABEL) == Some(&namespace)
        })
        .collect();
    let local = service
        .spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
        == Some("Local");
    let slices = context.slices.state();
    let ready = local
        .then(|| status::nodes_with_ready_endpoints(service, slices.iter().map(|s| s.as_ref())));
    let nodes_state = context.nodes.state();
    let nodes: BTreeMap<String, &Node> = nodes_state
        .iter()
        .map(|n| (n.name_any(), n.as_ref()))
        .collect();
    let ips = status::ingress_ips(
        service,
        pods.iter().map(|p| p.as_ref()),
        &nodes,
        ready.as_ref(),
    );
    let previous = ingress_of(service);
    let changed = previous != ips;
    if changed {
        set_ingress(services, service, &ips).await?;
    }
    if ips.is_empty() {
        let reason = status::unschedulable_reason(pods.iter().map(|p| p.as_ref()))
            .or_else(|| (!skipped_note.is_empty()).then(|| skipped_note.to_string()));
        let note = match &reason {
            Some(reason) => format!("There are no available nodes for LoadBalancer: {reason}"),
            None => "There are no available nodes for LoadBalancer".to_string(),
        };
        // Said when the addresses go, or when there is a (new) reason;
        // not while a new DaemonSet's pods are still starting.
        let new_reason = reason.is_some() && context.warn_once(uid, &note);
        if (changed || new_reason) && (!previous.is_empty() || reason.is_some()) {
            tracing::info!(service = %key, %note, "no ingress");
            publish(
                &context.recorder,
                service,
                Type::Warning,
                "UnAvailableLoadBalancer",
                &note,
            )
            .await;
        }
    } else {
        context.forget(uid);
        if changed {
            tracing::info!(service = %key, ?ips, "ingress updated");
            publish(
                &context.recorder,
                service,
                Type::Normal,
                "UpdatedLoadBalancer",
                &format!("Updated LoadBalancer with new IPs: {previous:?} -> {ips:?}"),
            )
            .await;
        }
    }
    Ok(())
}

async fn set_ingress(
    services: &Api<Service>,
    service: &Service,
    ips: &[String],
) -> Result<(), Error> {
    let ingress = if ips.is_empty() {
        serde_json::Value::Null
    } else {
        ips.iter()
            .map(|ip| json!({"ip": ip, "ipMode": "VIP"}))
            .collect()
    };
    let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
    services
        .patch_status(
            &service.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::api(format!(
            "updating the status of Service {}",
            service.name_any()
        )))?;
    Ok(())
}

impl Context {
    /// Records `note` as the last warning for `key`; true when it is new.
    fn warn_once(&self, key: &str, note: &str) -> bool {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.get(key).map(String::as_str) == Some(note) {
            return false;
        }
        warned.insert(key.to_string(), note.to_string());
        true
    }

    fn forget(&self, key: &str) {
        self.warned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// The namespace (`--servicelb-namespace` may name a new one) and the
    /// svclb ServiceAccount the pods run as, before a DaemonSet needs them.
    async fn prepare_namespace(&self) -> Result<(), Error> {
        let namespace = &self.settings.namespace;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        if namespaces
            .get_opt(namespace)
            .await
            .map_err(Error::api(format!("reading namespace {namespace}")))?
            .is_none()
        {
            let object: Namespace =
                serde_json::from_value(json!({"metadata": {"name": namespace}}))
                    .unwrap_or_default();
            match namespaces.create(&PostParams::default(), &object).await {
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                other => {
                    other.map_err(Error::api(format!("creating namespace {namespace}")))?;
                }
            }
        }
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let account = json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": daemonset::SERVICE_ACCOUNT, "namespace": namespace},
            "automountServiceAccountToken": false,
        });
        accounts
            .patch(
                daemonset::SERVICE_ACCOUNT,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&account),
            )
            .await
            .map_err(Error::api("applying the svclb ServiceAccount"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
