//! Renders validated contracts into the GitOps tree (kpack `Image` or a GitHub Actions build workflow, Argo CD
//! `Application` and `ImageUpdater`, Deployment/Service/Ingress/bindings, kustomization) and scaffolds the platform
//! repository (Backstage template, CI workflows, kpack install resources, monitoring).
//!
//! Rendering is pure: contracts and platform config in, file paths and bytes out. Writing the tree (and pruning
//! only our own stale files) is done by [`tree`]; nothing here talks to a cluster or a registry.

pub mod yaml;
