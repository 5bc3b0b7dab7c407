//! The one integration-test binary: the real secret-exec against a shared moto server.

mod loopback;
mod support;

mod agent;
mod compose;
mod core;
mod creds;
mod dburl;
mod dir;
mod fakehttp;
mod fault;
mod faultsrv;
mod files;
mod golden;
mod lambda;
mod logging;
mod mapping;
mod memory;
mod packaging;
mod quota;
mod quotasrv;
mod robust;
mod scan;
mod ssm;
mod supervisor;
mod terminal;
mod tls;
mod user;
