//! The one integration-test binary: the real secret-exec against a shared moto server.

mod loopback;
mod support;

mod agent;
mod core;
mod creds;
mod dir;
mod fakehttp;
mod fault;
mod faultsrv;
mod files;
mod golden;
mod logging;
mod mapping;
mod memory;
mod packaging;
mod robust;
mod scan;
mod ssm;
mod supervisor;
mod tls;
mod user;
