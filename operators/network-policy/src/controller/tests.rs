use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use k3r_reconciler::mock;
use kube::runtime::reflector::{self, store::Writer};
use serde_json::{Value, json};

use super::*;

/// Records replacements; the table "exists" once replaced until `flush`.
#[derive(Clone, Default)]
struct Recording {
    replaced: Arc<AtomicUsize>,
    present: Arc<AtomicBool>,
    last: Arc<Mutex<Option<Ruleset>>>,
}

impl Recording {
    fn flush(&self) {
        self.present.store(false, Ordering::SeqCst);
    }
}

impl Firewall for Recording {
    fn replace(&self, ruleset: &Ruleset) -> Result<(), Error> {
        self.replaced.fetch_add(1, Ordering::SeqCst);
        self.present.store(true, Ordering::SeqCst);
        if let Ok(mut last) = self.last.lock() {
            *last = Some(ruleset.clone());
        }
        Ok(())
    }

    fn exists(&self) -> Result<bool, Error> {
        Ok(self.present.load(Ordering::SeqCst))
    }

    fn remove(&self) -> Result<(), Error> {
        self.present.store(false, Ordering::SeqCst);
        Ok(())
    }
}

fn put<K>(writer: &mut Writer<K>, value: Value)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned,
{
    let object: K = serde_json::from_value(value).expect("object");
    writer.apply_watcher_event(&watcher::Event::Apply(object));
}

struct Caches {
    pods: Writer<Pod>,
    namespaces: Writer<Namespace>,
    policies: Writer<NetworkPolicy>,
}

/// A context for node n1 on a mocked API (answering 201 with the request)
/// and empty caches to fill.
fn context(firewall: Recording) -> (Arc<Context>, mock::MockApi, Caches) {
    let (client, api) = mock::client(|r| (201, r.body.clone()));
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (namespaces, ns_writer) = reflector::store::<Namespace>();
    let (policies, policy_writer) = reflector::store::<NetworkPolicy>();
    let context = Arc::new(Context::new(
        &Runtime::new(client),
        "n1".into(),
        (pods, namespaces, policies),
        firewall,
    ));
    let caches = Caches {
        pods: pod_writer,
        namespaces: ns_writer,
        policies: policy_writer,
    };
    (context, api, caches)
}

fn node() -> Arc<Node> {
    Arc::new(serde_json::from_value(json!({"metadata": {"name": "n1"}})).expect("node"))
}

#[tokio::test]
async fn replaces_the_table_only_when_the_ruleset_changes_or_the_table_went() {
    let firewall = Recording::default();
    let (context, api, mut caches) = context(firewall.clone());
    let Caches {
        pods: pod_writer,
        namespaces: ns_writer,
        policies: policy_writer,
    } = &mut caches;
    put(ns_writer, json!({"metadata": {"name": "shop"}}));
    put(
        pod_writer,
        json!({
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.42.0.5"}]},
        }),
    );
    reconcile(node(), Arc::clone(&context))
        .await
        .expect("first");
    assert_eq!(firewall.replaced.load(Ordering::SeqCst), 1);

    // Nothing changed: no replacement.
    let next = reconcile(node(), Arc::clone(&context))
        .await
        .expect("again");
    assert_eq!(next, Next::After(RECHECK));
    assert_eq!(firewall.replaced.load(Ordering::SeqCst), 1);

    // A policy selecting the pod: its chain appears.
    put(
        policy_writer,
        json!({
            "metadata": {"name": "deny", "namespace": "shop"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        }),
    );
    reconcile(node(), Arc::clone(&context))
        .await
        .expect("policy");
    assert_eq!(firewall.replaced.load(Ordering::SeqCst), 2);
    let last = firewall
        .last
        .lock()
        .expect("lock")
        .clone()
        .expect("ruleset");
    assert!(last.chains.iter().any(|c| c.name == "ingress/shop/web"));

    // The table flushed behind its back: written again.
    firewall.flush();
    reconcile(node(), Arc::clone(&context))
        .await
        .expect("flushed");
    assert_eq!(firewall.replaced.load(Ordering::SeqCst), 3);
    assert!(api.requests().is_empty(), "no findings, no Events");
}

#[tokio::test]
async fn a_finding_is_one_warning_event_on_its_policy() {
    let (context, api, mut caches) = context(Recording::default());
    let Caches {
        pods: pod_writer,
        namespaces: ns_writer,
        policies: policy_writer,
    } = &mut caches;
    put(ns_writer, json!({"metadata": {"name": "shop"}}));
    put(
        pod_writer,
        json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.42.0.5"}]},
        }),
    );
    put(
        policy_writer,
        json!({
            "metadata": {"name": "from-gone", "namespace": "shop", "uid": "u1"},
            "spec": {"podSelector": {}, "ingress": [{"from": [
                {"namespaceSelector": {"matchLabels": {"team": "gone"}}}]}]},
        }),
    );
    reconcile(node(), Arc::clone(&context))
        .await
        .expect("first");
    reconcile(node(), Arc::clone(&context))
        .await
        .expect("again");
    let events: Vec<mock::Recorded> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.route().ends_with("/events"))
        .collect();
    assert_eq!(events.len(), 1, "reported once: {events:?}");
    let body = &events[0].body;
    assert_eq!(body["type"], "Warning");
    assert_eq!(body["reason"], "NoMatchingNamespace");
    assert_eq!(body["regarding"]["name"], "from-gone");
    assert!(
        body["note"]
            .as_str()
            .is_some_and(|n| n.contains("{team=gone} selects no namespace")),
        "{body}"
    );
}
