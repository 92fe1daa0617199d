//! End-to-end tests: the portcullis binary in front of the real example
//! Express app, exercised with real HTTP clients and raw sockets.

mod harness;

mod access;
mod acme;
mod alerts;
mod audit;

mod browser;
mod dashboard;
mod dependencies;
mod early_answers;
mod errors;
mod filter;
mod headers;
mod keep_alive;
mod limits;
mod logins;
mod metrics;
mod observatory;
mod operations;
mod proxying;
mod rate_limits;
mod redos;
mod reload;
mod scanners;
mod sessions;
mod shared_store;
mod tls;
mod versions;
mod waf;

use harness::{ExpressApp, Gateway};

/// The example app with a gateway in front, configured with `extra`.
pub fn protected(extra: &str) -> (ExpressApp, Gateway) {
    let app = ExpressApp::start();
    let gateway = Gateway::start(&app.url(), extra);
    (app, gateway)
}
