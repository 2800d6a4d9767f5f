//! One integration-test binary (links once). Tests run the real `dpx` binary
//! against real components: the CNCF distribution registry, skopeo, dockerd,
//! containerd and podman, plus the project's fake Docker Hub.

#[path = "../support/mod.rs"]
mod support;

mod archive;
mod boundary;
mod cli;
mod cold_path;
mod crash;
mod credentials;
mod daemon;
mod disk;
mod docs;
mod engines;
mod fault_matrix;
mod forged_tokens;
mod hostile;
mod load;
mod metrics;
mod negotiate;
mod protocol;
mod pull;
mod purge;
mod quota;
mod ratelimit;
mod raw_http;
mod referrers;
mod registry;
mod secrets;
mod serve;
mod serve_auth;
mod serve_limits;
mod setup;
mod status_page;
mod store;
mod team;
mod upstream;
mod warm_path;
