//! Alerts: a webhook receiver started here gets one alert for a burst of
//! failed logins at the portal; a webhook that is down stops nothing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::access::{login_form, post_login, users_file};
use crate::harness::{client, free_port, ExpressApp, Gateway, TempDir};

/// A webhook on loopback that keeps every JSON body it is sent.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let kept = kept.clone();
                    async move {
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        kept.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, received)
}

async fn fail_logins(gateway: &Gateway, times: usize) {
    let form = login_form(gateway).await;
    for _ in 0..times {
        let response = post_login(gateway, &form, &[("username", "ada"), ("password", "guess")]).await;
        assert_eq!(response.status(), 401);
    }
}

fn config(users: &std::path::Path, webhook: &str) -> String {
    format!(
        "[portal]\nusers = \"{}\"\n[alerts]\nwebhook = \"{webhook}\"\nbatch_window = \"200ms\"\nretries = 1\n\
         [[alerts.thresholds]]\nkind = \"portal\"\nrule = \"login_failed\"\ncount = 3\nwindow = \"1m\"\n",
        users.display()
    )
}

#[tokio::test]
async fn a_brute_force_burst_makes_one_alert() {
    let dir = TempDir::new();
    let (users, _) = users_file(&dir.0);
    let (addr, received) = receiver().await;
    let app = ExpressApp::start();
    let gateway = Gateway::start(&app.url(), &config(&users, &format!("http://{addr}/hook")));
    fail_logins(&gateway, 8).await;
    gateway.process.stdout.wait_for("\"action\":\"sent\"");
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let alerts = bodies[0]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "one alert for the burst: {bodies:?}");
    assert_eq!(alerts[0]["client_ip"], "127.0.0.1");
    assert_eq!(alerts[0]["count"], 4, "the fourth failure passed the threshold of 3");
    assert_eq!(alerts[0]["threshold"]["rule"], "login_failed");
    assert_eq!(alerts[0]["last_event"]["kind"], "portal");
}

#[tokio::test]
async fn a_webhook_that_is_down_is_logged_and_serving_goes_on() {
    let dir = TempDir::new();
    let (users, _) = users_file(&dir.0);
    let app = ExpressApp::start();
    let closed = format!("http://127.0.0.1:{}/hook", free_port());
    let gateway = Gateway::start(&app.url(), &config(&users, &closed));
    fail_logins(&gateway, 5).await;
    gateway.process.stdout.wait_for("\"rule\":\"webhook_unreachable\"");
    let response = client().get(gateway.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    gateway.process.stdout.wait_for("\"action\":\"dropped\"");
}
