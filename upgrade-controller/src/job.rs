//! The Job that applies a Plan on one node, shaped as
//! system-upgrade-controller makes it (names, labels, host mounts,
//! environment, affinity, tolerations, defaults), so SUC's upgrade images
//! run unchanged. One difference by design: cordon and drain are not
//! kubectl init containers — the controller cordons and drains through the
//! API (the Eviction API) before it lets the Job run (after its prepare
//! step, if any: [`crate::gate`]), so no kubectl image is needed.

use std::collections::BTreeMap;

use k3r_crds::plan::{ContainerSpec, Plan};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, DownwardAPIVolumeFile, DownwardAPIVolumeSource, EnvVar,
    EnvVarSource, HostPathVolumeSource, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity, PodSpec,
    PodTemplateSpec, SecretVolumeSource, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use kube::ResourceExt;

use crate::suc::{self, LABEL_EXCLUSIVE, LABEL_PLAN};

pub const BACKOFF_LIMIT: i32 = 2;
pub const ACTIVE_DEADLINE_SECONDS: i64 = 600;
pub const TTL_SECONDS_AFTER_FINISHED: i32 = 900;
const ANNOTATION_TTL: &str = "upgrade.cattle.io/ttl-seconds-after-finished";
const HOSTNAME: &str = "kubernetes.io/hostname";
const SECRETS_DIR: &str = "/run/system-upgrade/secrets";

/// What the Job is made from besides the Plan and the node.
pub struct JobInput<'a> {
    pub controller: &'a str,
    pub latest_version: &'a str,
    pub latest_hash: &'a str,
    /// The node is in the Plan's `status.applying`: the Job may run
    /// (otherwise it is created paused, parallelism 0, as SUC does).
    pub applying: bool,
    /// `postCompleteDelay` in seconds, if any (the TTL outlives it).
    pub post_complete_delay: Option<u64>,
}

/// The node's hostname label, or its name.
pub fn hostname(node: &Node) -> String {
    node.labels()
        .get(HOSTNAME)
        .cloned()
        .unwrap_or_else(|| node.name_any())
}

/// `image` with `tag` when it names no tag or digest (docker's reference
/// rules), in docker's familiar form.
pub fn with_latest_tag(image: &str, tag: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') || tag.is_empty() {
        return image.to_string();
    }
    let familiar = image
        .strip_prefix("docker.io/")
        .or_else(|| image.strip_prefix("index.docker.io/"))
        .map(|rest| match rest.strip_prefix("library/") {
            Some(name) if !name.contains('/') => name,
            _ => rest,
        })
        .unwrap_or(image);
    format!("{familiar}:{tag}")
}

pub(crate) fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn value_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn secret_volume_name(secret: &str) -> String {
    suc::safe_concat_name(&["secret", secret])
}

/// A prepare or upgrade container: the host's root at /host, the pod's
/// labels and annotations at /run/system-upgrade/pod, the node and pod in
/// the environment, then the plan's name, hash and version, its secrets
/// and volumes.
fn container(name: &str, plan: &Plan, spec: &ContainerSpec, input: &JobInput<'_>) -> Container {
    let mut env = vec![
        field_env("SYSTEM_UPGRADE_NODE_NAME", "spec.nodeName"),
        field_env("SYSTEM_UPGRADE_POD_NAME", "metadata.name"),
        field_env("SYSTEM_UPGRADE_POD_UID", "metadata.uid"),
    ];
    env.extend(spec.envs.iter().cloned());
    env.extend([
        value_env("SYSTEM_UPGRADE_PLAN_NAME", &plan.name_any()),
        value_env("SYSTEM_UPGRADE_PLAN_LATEST_HASH", input.latest_hash),
        value_env("SYSTEM_UPGRADE_PLAN_LATEST_VERSION", input.latest_version),
    ]);
    let mut mounts = vec![
        VolumeMount {
            name: "host-root".into(),
            mount_path: "/host".into(),
            ..Default::default()
        },
        VolumeMount {
            name: "pod-info".into(),
            mount_path: "/run/system-upgrade/pod".into(),
            read_only: Some(true),
            ..Default::default()
        },
    ];
    for secret in &plan.spec.secrets {
        let secret_name = secret.name.clone().unwrap_or_default();
        let path = match secret.path.as_deref() {
            None | Some("") => format!("{SECRETS_DIR}/{secret_name}"),
            Some(p) if p.starts_with('/') => p.to_string(),
            Some(p) => format!("{SECRETS_DIR}/{p}"),
        };
        mounts.push(VolumeMount {
            name: secret_volume_name(&secret_name),
            mount_path: path,
            read_only: Some(true),
            ..Default::default()
        });
    }
    for volume in &spec.volumes {
        mounts.push(VolumeMount {
            name: volume.name.clone(),
            mount_path: volume.destination.clone(),
            ..Default::default()
        });
    }
    Container {
        name: name.into(),
        image: Some(with_latest_tag(&spec.image, input.latest_version)),
        command: (!spec.command.is_empty()).then(|| spec.command.clone()),
        args: (!spec.args.is_empty()).then(|| spec.args.clone()),
        env: Some(env),
        env_from: (!spec.env_from.is_empty()).then(|| spec.env_from.clone()),
        volume_mounts: Some(mounts),
        image_pull_policy: Some("IfNotPresent".into()),
        security_context: spec.security_context.clone(),
        ..Default::default()
    }
}

/// The Job applying `plan` on `node`.
pub fn new_job(plan: &Plan, node: &Node, input: &JobInput<'_>) -> Job {
    let node_hostname = hostname(node);
    let labels = suc::job_labels(
        plan,
        &node.name_any(),
        input.controller,
        input.latest_version,
        input.latest_hash,
    );
    let mut ttl = TTL_SECONDS_AFTER_FINISHED;
    if let Some(delay) = input.post_complete_delay {
        ttl = ttl.max(i32::try_from(delay + 60).unwrap_or(i32::MAX));
    }
    let mut job_annotations = BTreeMap::from([(ANNOTATION_TTL.to_string(), ttl.to_string())]);
    let mut pod_annotations = BTreeMap::new();
    for (key, value) in plan.annotations() {
        if !key.contains("cattle.io/") && !key.contains("kubectl.kubernetes.io/") {
            job_annotations.insert(key.clone(), value.clone());
            pod_annotations.insert(key.clone(), value.clone());
        }
    }
    let exclusive = plan.spec.exclusive.unwrap_or(false);
    let (anti_key, anti_value) = if exclusive {
        (LABEL_EXCLUSIVE, "true".to_string())
    } else {
        (LABEL_PLAN, plan.name_any())
    };
    let mut tolerations = vec![Toleration {
        key: Some("node.kubernetes.io/unschedulable".into()),
        operator: Some("Exists".into()),
        effect: Some("NoSchedule".into()),
        ..Default::default()
    }];
    tolerations.extend(plan.spec.tolerations.iter().cloned());
    let mut volumes = vec![
        Volume {
            name: "host-root".into(),
            host_path: Some(HostPathVolumeSource {
                path: "/".into(),
                type_: Some("Directory".into()),
            }),
            ..Default::default()
        },
        Volume {
            name: "pod-info".into(),
            downward_api: Some(DownwardAPIVolumeSource {
                default_mode: Some(0o644),
                items: Some(
                    [
                        ("labels", "metadata.labels"),
                        ("annotations", "metadata.annotations"),
                    ]
                    .into_iter()
                    .map(|(path, field)| DownwardAPIVolumeFile {
                        path: path.into(),
                        field_ref: Some(ObjectFieldSelector {
                            api_version: Some("v1".into()),
                            field_path: field.into(),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ),
            }),
            ..Default::default()
        },
    ];
    for secret in &plan.spec.secrets {
        let secret_name = secret.name.clone().unwrap_or_default();
        volumes.push(Volume {
            name: secret_volume_name(&secret_name),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret_name),
                default_mode: secret.default_mode,
                optional: Some(secret.ignore_updates.unwrap_or(false)),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    for volume in &plan.spec.upgrade.volumes {
        volumes.push(Volume {
            name: volume.name.clone(),
            host_path: Some(HostPathVolumeSource {
                path: volume.source.clone(),
                type_: None,
            }),
            ..Default::default()
        });
    }
    let job_name = suc::job_name(&plan.name_any(), &node.name_any(), input.latest_hash);
    let mut init_containers: Vec<Container> = plan
        .spec
        .prepare
        .iter()
        .map(|prepare| container("prepare", plan, prepare, input))
        .collect();
    if crate::gate::wanted(plan) {
        init_containers.push(crate::gate::container(plan, &job_name));
    }
    let mut upgrade = container("upgrade", plan, &plan.spec.upgrade, input);
    if upgrade.security_context.is_none() {
        upgrade.security_context = Some(SecurityContext {
            privileged: Some(true),
            capabilities: Some(Capabilities {
                add: Some(vec!["CAP_SYS_BOOT".into()]),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let active_deadline = match plan.spec.job_active_deadline_secs {
        None => Some(ACTIVE_DEADLINE_SECONDS),
        Some(s) if s < 0 => Some(ACTIVE_DEADLINE_SECONDS),
        Some(0) => None,
        Some(s) => Some(s),
    };
    Job {
        metadata: ObjectMeta {
            name: Some(job_name),
            namespace: plan.namespace(),
            labels: Some(labels.clone()),
            annotations: Some(job_annotations),
            ..Default::default()
        },
        spec: Some(JobSpec {
            pod_replacement_policy: Some("TerminatingOrFailed".into()),
            backoff_limit: Some(BACKOFF_LIMIT),
            ttl_seconds_after_finished: Some(ttl),
            active_deadline_seconds: active_deadline,
            completions: Some(1),
            // Created paused; running once the node is recorded as applying.
            parallelism: Some(i32::from(input.applying)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(pod_annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    host_ipc: Some(true),
                    host_pid: Some(true),
                    host_network: Some(true),
                    dns_policy: Some("ClusterFirstWithHostNet".into()),
                    priority_class_name: plan.spec.priority_class_name.clone(),
                    service_account_name: plan.spec.service_account_name.clone(),
                    affinity: Some(Affinity {
                        node_affinity: Some(NodeAffinity {
                            required_during_scheduling_ignored_during_execution: Some(
                                NodeSelector {
                                    node_selector_terms: vec![NodeSelectorTerm {
                                        match_expressions: Some(vec![NodeSelectorRequirement {
                                            key: HOSTNAME.into(),
                                            operator: "In".into(),
                                            values: Some(vec![node_hostname]),
                                        }]),
                                        ..Default::default()
                                    }],
                                },
                            ),
                            ..Default::default()
                        }),
                        pod_anti_affinity: Some(PodAntiAffinity {
                            required_during_scheduling_ignored_during_execution: Some(vec![
                                PodAffinityTerm {
                                    label_selector: Some(LabelSelector {
                                        match_expressions: Some(vec![LabelSelectorRequirement {
                                            key: anti_key.into(),
                                            operator: "In".into(),
                                            values: Some(vec![anti_value]),
                                        }]),
                                        ..Default::default()
                                    }),
                                    topology_key: HOSTNAME.into(),
                                    ..Default::default()
                                },
                            ]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    tolerations: Some(tolerations),
                    restart_policy: Some("Never".into()),
                    volumes: Some(volumes),
                    image_pull_secrets: (!plan.spec.image_pull_secrets.is_empty())
                        .then(|| plan.spec.image_pull_secrets.clone()),
                    init_containers: (!init_containers.is_empty()).then_some(init_containers),
                    containers: vec![upgrade],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
