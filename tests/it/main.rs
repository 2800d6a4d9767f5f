//! One integration-test binary (links once). Tests run the real `dpx` binary
//! against real components: the CNCF distribution registry, skopeo, dockerd,
//! containerd and podman, plus the project's fake Docker Hub.

#[path = "../support/mod.rs"]
mod support;

mod archive;
mod boundary;
mod cli;
mod credentials;
mod daemon;
mod docs;
mod engines;
mod hostile;
mod negotiate;
mod protocol;
mod pull;
mod purge;
mod quota;
mod ratelimit;
mod referrers;
mod registry;
mod serve;
mod serve_auth;
mod serve_limits;
mod setup;
mod store;
mod team;
mod upstream;
mod warm_path;
