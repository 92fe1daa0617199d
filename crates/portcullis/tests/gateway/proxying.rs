use std::time::Duration;

use tokio_tungstenite::tungstenite::Message;

use crate::harness::{client, echoed};
use crate::protected;

async fn echo(
    gateway: &crate::harness::Gateway,
    headers: &[(&str, &str)],
) -> (reqwest::header::HeaderMap, serde_json::Value) {
    let mut request = client().get(gateway.url("/echo"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    (headers, response.json().await.unwrap())
}

#[tokio::test]
async fn spoofed_forwarding_headers_are_replaced_not_appended() {
    let (_app, gateway) = protected("");
    let spoof = [
        ("x-forwarded-for", "6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
        ("forwarded", "for=6.6.6.6"),
        ("x-request-id", "forged"),
    ];
    let (headers, seen) = echo(&gateway, &spoof).await;
    let upstream = &seen["headers"];
    assert_eq!(upstream["x-forwarded-for"], "127.0.0.1");
    assert_eq!(upstream["x-real-ip"], "127.0.0.1");
    assert_eq!(upstream["x-forwarded-proto"], "http");
    assert_eq!(
        upstream["forwarded"],
        format!("for=127.0.0.1;proto=http;host=\"{}\"", gateway.addr)
    );
    assert_ne!(upstream["x-request-id"], "forged");
    assert_eq!(
        upstream["x-request-id"],
        headers["x-request-id"].to_str().unwrap(),
        "the app and the client see one id"
    );
}

#[tokio::test]
async fn a_trusted_proxy_is_believed_right_to_left() {
    let (_app, gateway) = protected("trusted_proxies = [\"127.0.0.0/8\", \"10.0.0.0/8\"]\n");
    let chain = [
        ("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.2.3"),
        ("x-request-id", "edge-42"),
    ];
    let (headers, seen) = echo(&gateway, &chain).await;
    let upstream = &seen["headers"];
    assert_eq!(
        upstream["x-real-ip"], "203.0.113.7",
        "first untrusted hop from the right"
    );
    assert_eq!(upstream["x-forwarded-for"], "6.6.6.6, 203.0.113.7, 10.1.2.3, 127.0.0.1");
    assert_eq!(headers["x-request-id"], "edge-42");
    gateway.process.stdout.wait_for("\"client_ip\":\"203.0.113.7\"");
}

#[tokio::test]
async fn host_is_preserved_and_hop_by_hop_headers_are_dropped() {
    let (_app, gateway) = protected("");
    let (_, seen) = echo(
        &gateway,
        &[
            ("host", "shop.example"),
            ("connection", "x-secret"),
            ("x-secret", "1"),
            ("proxy-authorization", "Basic eA=="),
        ],
    )
    .await;
    let upstream = &seen["headers"];
    assert_eq!(upstream["host"], "shop.example");
    assert_eq!(upstream["x-forwarded-host"], "shop.example");
    assert!(
        upstream.get("x-secret").is_none() && upstream.get("proxy-authorization").is_none(),
        "{upstream}"
    );
}

#[tokio::test]
async fn http2_with_prior_knowledge() {
    let (_app, gateway) = protected("");
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2.get(gateway.url("/api/products")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.headers()["x-frame-options"], "SAMEORIGIN");
    assert!(response.text().await.unwrap().contains("Lamp"));
    let (_, seen) = {
        let response = h2.get(gateway.url("/echo")).send().await.unwrap();
        ((), response.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!(
        seen["headers"]["host"],
        gateway.addr.to_string(),
        "the :authority becomes Host"
    );
}

#[tokio::test]
async fn forms_post_through() {
    let (_app, gateway) = protected("");
    let response = client()
        .post(gateway.url("/form"))
        .form(&[("name", "Ada"), ("message", "hi")])
        .send()
        .await
        .unwrap();
    assert!(response.text().await.unwrap().contains("Thanks, Ada."));
}

#[tokio::test]
async fn websocket_echo_through_the_gateway() {
    let (_app, gateway) = protected("");
    let (mut socket, response) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gateway.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    for text in ["hello", "second message"] {
        let reply = echoed(&mut socket, Message::text(text), Duration::from_secs(5)).await;
        assert_eq!(reply.into_text().unwrap().as_str(), text);
    }
    let reply = echoed(
        &mut socket,
        Message::binary(vec![0u8, 1, 2, 255]),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reply.into_data().as_ref(), [0u8, 1, 2, 255]);
}

/// A message far larger than any socket buffer: the tunnel holds what the
/// other side cannot take yet and passes all of it on, in order.
#[tokio::test]
async fn a_large_websocket_message_crosses_the_tunnel_whole() {
    let (_app, gateway) = protected("");
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gateway.addr))
        .await
        .unwrap();
    let message: Vec<u8> = (0..8 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let reply = echoed(&mut socket, Message::binary(message.clone()), Duration::from_secs(20)).await;
    assert!(reply.into_data().as_ref() == message.as_slice(), "the echo differs");
}

#[tokio::test]
async fn a_200_mib_download_streams_in_bounded_memory() {
    let (_app, gateway) = protected("");
    let mut response = client().get(gateway.url("/download?mb=200")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (mut received, mut peak_kib) = (0u64, 0u64);
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len() as u64;
        if received % (8 * 1024 * 1024) < chunk.len() as u64 {
            peak_kib = peak_kib.max(gateway.process.rss_kib());
            // Read slowly for a while, so back-pressure is what bounds memory.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(received, 200 * 1024 * 1024);
    assert!(
        peak_kib > 0 && peak_kib < 64 * 1024,
        "gateway RSS peaked at {peak_kib} KiB"
    );
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let (_app, gateway) = protected("[server]\nworkers = 1\n");
    let mut ports = std::collections::HashSet::new();
    for path in ["/echo", "/echo?x=1", "/api/products", "/echo"] {
        let response = client().get(gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        if let Ok(echo) = serde_json::from_str::<serde_json::Value>(&body) {
            if let Some(port) = echo.get("port") {
                ports.insert(port.as_u64().unwrap());
            }
        }
    }
    assert_eq!(ports.len(), 1, "one kept-alive connection to the app: {ports:?}");
}
