//! Runtime manifests: Deployment, Service, Ingress, binding mounts, and the kustomization tying them together.

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, Service,
    ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::app::{App, BINDING_ROOT, PORT};

fn meta(app: &App<'_>, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(app.namespace()),
        labels: serde_json::from_value(app.labels()).ok(),
        ..ObjectMeta::default()
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The Deployment, with `image` set to the application name: the kustomization's `images:` entry points it at the
/// registry (and Argo CD Image Updater pins it by digest there).
#[must_use]
pub fn deployment(app: &App<'_>) -> Value {
    let bindings = &app.contract.spec.bindings;
    let volumes = (!bindings.is_empty()).then(|| {
        bindings
            .iter()
            .map(|b| Volume {
                name: format!("binding-{}", b.name),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(b.name.to_string()),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            })
            .collect()
    });
    let selector = serde_json::from_value(app.selector_labels()).ok();
    let d = Deployment {
        metadata: meta(app, app.name().to_owned()),
        spec: Some(DeploymentSpec {
            replicas: Some(i32::try_from(app.contract.spec.runtime.replicas).unwrap_or(i32::MAX)),
            revision_history_limit: Some(5),
            selector: LabelSelector {
                match_labels: selector,
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: serde_json::from_value(app.labels()).ok(),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container(app)],
                    volumes,
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    };
    with_kind("apps/v1", "Deployment", to_value(&d))
}

/// The app container: `$PORT`, requests/limits, TCP probes on the `http` port, no privileges, binding mounts.
fn container(app: &App<'_>) -> Container {
    let res = &app.contract.spec.runtime.resources;
    let mut env = vec![EnvVar {
        name: "PORT".into(),
        value: Some(PORT.to_string()),
        ..EnvVar::default()
    }];
    let bindings = &app.contract.spec.bindings;
    if !bindings.is_empty() {
        env.push(EnvVar {
            name: "SERVICE_BINDING_ROOT".into(),
            value: Some(BINDING_ROOT.into()),
            ..EnvVar::default()
        });
    }
    let probe = |initial: i32, period: i32| Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String("http".into()),
            host: None,
        }),
        initial_delay_seconds: Some(initial),
        period_seconds: Some(period),
        ..Probe::default()
    };
    Container {
        name: "app".into(),
        image: Some(app.name().to_owned()),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: i32::from(PORT),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(env),
        resources: Some(ResourceRequirements {
            requests: Some(
                [
                    ("cpu".to_owned(), Quantity(res.cpu.to_string())),
                    ("memory".to_owned(), Quantity(res.memory.to_string())),
                ]
                .into(),
            ),
            limits: Some([("memory".to_owned(), Quantity(res.memory.to_string()))].into()),
            ..ResourceRequirements::default()
        }),
        readiness_probe: Some(probe(5, 10)),
        liveness_probe: Some(probe(30, 20)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            run_as_non_root: Some(true),
            ..SecurityContext::default()
        }),
        volume_mounts: (!bindings.is_empty()).then(|| {
            bindings
                .iter()
                .map(|b| VolumeMount {
                    name: format!("binding-{}", b.name),
                    mount_path: format!("{BINDING_ROOT}/{}", b.name),
                    read_only: Some(true),
                    ..VolumeMount::default()
                })
                .collect()
        }),
        ..Container::default()
    }
}

#[must_use]
pub fn service(app: &App<'_>) -> Value {
    let s = Service {
        metadata: meta(app, app.name().to_owned()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: serde_json::from_value(app.selector_labels()).ok(),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    with_kind("v1", "Service", to_value(&s))
}

/// The Ingress, or `None` when the contract has none.
#[must_use]
pub fn ingress(app: &App<'_>) -> Option<Value> {
    let ing = &app.contract.spec.ingress;
    let host = ing.host.as_ref().filter(|_| ing.enabled)?.to_string();
    let i = Ingress {
        metadata: meta(app, app.name().to_owned()),
        spec: Some(IngressSpec {
            ingress_class_name: Some(app.env.ingress_class.clone()),
            tls: Some(vec![IngressTLS {
                hosts: Some(vec![host.clone()]),
                secret_name: Some(format!("{}-tls", app.name())),
            }]),
            rules: Some(vec![IngressRule {
                host: Some(host),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: app.name().to_owned(),
                                port: Some(ServiceBackendPort {
                                    name: Some("http".into()),
                                    number: None,
                                }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        status: None,
    };
    Some(with_kind("networking.k8s.io/v1", "Ingress", to_value(&i)))
}

/// `apiVersion` and `kind` first, as people expect to read them.
fn with_kind(api_version: &str, kind: &str, body: Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("apiVersion".into(), api_version.into());
    m.insert("kind".into(), kind.into());
    if let Value::Object(rest) = body {
        for (k, v) in rest {
            if k != "apiVersion" && k != "kind" {
                m.insert(k, v);
            }
        }
    }
    Value::Object(m)
}

/// The kustomization: resources plus the `images:` entry Argo CD Image Updater writes back to.
#[must_use]
pub fn kustomization(app: &App<'_>, resources: &[String], digest: Option<&str>) -> Value {
    let mut image = serde_json::json!({
        "name": app.name(),
        "newName": app.image_repository(),
    });
    match digest {
        Some(d) => image["digest"] = d.into(),
        None => image["newTag"] = app.env_name().into(),
    }
    serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
        "images": [image],
    })
}
