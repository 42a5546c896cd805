//! Fleet patching. A fleet is a set of app images (named by a contracts tree, by references, or by a registry
//! prefix); a new run image (and optionally a builder) arrives; [`plan`] decides per image whether to rebase,
//! rebuild, leave it or skip it, by the CNB rules and in words; [`patch`] carries the plan out in waves by
//! environment, rate-limited per registry, retried, and resumable after a crash from its journal on disk;
//! [`report`] records what happened, and the patched digests can be pinned into the GitOps tree.
//!
//! ```text
//! inventory -> inspect (manifest + config, no layers) -> plan::decide -> campaign (journal) -> patch -> report
//! ```

pub mod campaign;
pub mod facts;
pub mod inspect;
pub mod inventory;
pub mod limit;
pub mod patch;
pub mod plan;
pub mod report;
mod source;

pub use campaign::{Campaign, CampaignError};
pub use inventory::Target;
pub use plan::{Action, Decision, Reason};
