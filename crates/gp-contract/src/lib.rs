//! AppDeploymentRequest contracts.
