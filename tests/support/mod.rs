//! Test support: the fake hub, real components, and the dpx binary.
#![allow(dead_code)]

pub mod distribution;
pub mod dpx;
pub mod engines;
pub mod http;
pub mod hub;
pub mod layout;
