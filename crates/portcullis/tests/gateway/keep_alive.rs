//! Keep-alive HTTP/1.1 connections rest between requests without hyper's
//! buffers, and lose nothing for it: heads and bodies split across reads,
//! pipelined requests and upgrades after a rest are all served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tokio_tungstenite::tungstenite::Message;

use crate::harness::{echoed, eventually, free_port, text_of, ExpressApp, Gateway};

/// A gateway in front of `app` with its metrics on `metrics`.
fn with_metrics(app: &ExpressApp, metrics: u16) -> Gateway {
    Gateway::from_config(&format!(
        "[upstream]\nurl = \"{}\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n",
        app.url()
    ))
}

/// Connections resting between requests, by the gateway's own gauge.
async fn resting(metrics: u16) -> u64 {
    let text = text_of(&format!("http://127.0.0.1:{metrics}/metrics")).await;
    text.lines()
        .find_map(|line| line.strip_prefix("portcullis_idle_connections "))
        .unwrap_or_else(|| panic!("no idle gauge in\n{text}"))
        .parse()
        .unwrap()
}

async fn wait_resting(metrics: u16, count: u64) {
    eventually(Duration::from_secs(5), &format!("never {count} resting"), async || {
        resting(metrics).await == count
    })
    .await;
}

/// Bytes the gateway has not yet read from its end of `client`'s
/// connection, from the kernel's socket table.
fn unread_by_gateway(gateway: SocketAddr, client: &TcpStream) -> u64 {
    let client_port = client.local_addr().unwrap().port();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port_of = |address: &str| u16::from_str_radix(address.rsplit(':').next().unwrap(), 16).unwrap();
    table
        .lines()
        .skip(1)
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, remote) = (port_of(fields[1]), port_of(fields[2]));
            (local == gateway.port() && remote == client_port)
                .then(|| u64::from_str_radix(fields[4].split(':').nth(1).unwrap(), 16).unwrap())
        })
        .expect("the gateway's end of the connection")
}

/// Sends `first`, waits until the woken gateway has read it, then sends `rest`:
/// the request reaches hyper in two reads, the first after a rest.
async fn send_in_two_reads(gateway: SocketAddr, metrics: u16, stream: &mut TcpStream, first: &[u8], rest: &[u8]) {
    wait_resting(metrics, 1).await;
    stream.write_all(first).unwrap();
    wait_resting(metrics, 0).await;
    eventually(Duration::from_secs(5), "the first part was never read", async || {
        unread_by_gateway(gateway, stream) == 0
    })
    .await;
    stream.write_all(rest).unwrap();
}

/// The status line and body of the next response on `stream` (length-delimited).
fn response(stream: &mut TcpStream) -> (String, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .map_or(0, |length| length.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    let status = head.lines().next().unwrap().to_owned();
    (status, String::from_utf8(body).unwrap())
}

/// A gateway in front of the example app, with its metrics on the returned
/// port, and a connection to it that has served one request and rests.
async fn a_rested_connection() -> (ExpressApp, Gateway, u16, TcpStream) {
    let app = ExpressApp::start();
    let metrics = free_port();
    let gateway = with_metrics(&app, metrics);
    let mut stream = TcpStream::connect(gateway.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET /hit HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(
        response(&mut stream),
        ("HTTP/1.1 200 OK".into(), r#"{"hits":1}"#.into())
    );
    wait_resting(metrics, 1).await;
    (app, gateway, metrics, stream)
}

#[tokio::test]
async fn a_resting_connection_loses_no_byte_of_split_or_pipelined_requests() {
    let (_app, gateway, metrics, mut stream) = a_rested_connection().await;

    // A head cut in two, its first part read by a fresh hyper connection.
    let head = b"GET /hit HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    send_in_two_reads(gateway.addr, metrics, &mut stream, &head[..20], &head[20..]).await;
    assert_eq!(
        response(&mut stream),
        ("HTTP/1.1 200 OK".into(), r#"{"hits":2}"#.into())
    );

    // A body cut in two.
    let upload = b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n0123456789";
    let cut = upload.len() - 6;
    send_in_two_reads(gateway.addr, metrics, &mut stream, &upload[..cut], &upload[cut..]).await;
    assert_eq!(
        response(&mut stream),
        ("HTTP/1.1 200 OK".into(), r#"{"bytes":10}"#.into())
    );

    // Two requests in one write, and the start of a third.
    wait_resting(metrics, 1).await;
    let pipelined = b"GET /hit HTTP/1.1\r\nHost: x\r\n\r\nGET /hit HTTP/1.1\r\nHost: x\r\n\r\nGET /hit HTTP/1.1\r\n";
    stream.write_all(pipelined).unwrap();
    assert_eq!(response(&mut stream).1, r#"{"hits":3}"#);
    assert_eq!(response(&mut stream).1, r#"{"hits":4}"#);
    eventually(Duration::from_secs(5), "the third part was never read", async || {
        unread_by_gateway(gateway.addr, &stream) == 0
    })
    .await;
    stream.write_all(b"Host: x\r\n\r\n").unwrap();
    assert_eq!(response(&mut stream).1, r#"{"hits":5}"#);
    wait_resting(metrics, 1).await;
}

#[tokio::test]
async fn a_websocket_opens_on_a_connection_that_rested() {
    let (_app, gateway, metrics, stream) = a_rested_connection().await;

    stream.set_nonblocking(true).unwrap();
    let stream = tokio::net::TcpStream::from_std(stream).unwrap();
    let url = format!("ws://{}/ws", gateway.addr);
    let (mut socket, answer) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(answer.status(), 101);
    let echo = echoed(&mut socket, Message::text("after a rest"), Duration::from_secs(5)).await;
    assert_eq!(echo.into_text().unwrap().as_str(), "after a rest");
    // A tunnel is not an idle HTTP connection, however quiet it is.
    assert_eq!(resting(metrics).await, 0);
}

#[tokio::test]
async fn resting_connections_close_at_shutdown_without_waiting_for_the_drain() {
    let (_app, mut gateway, _, mut stream) = a_rested_connection().await;

    let started = std::time::Instant::now();
    gateway.process.signal("TERM");
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0, "closed without a word");
    assert!(gateway.process.wait_exit(Duration::from_secs(10)).success());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_body_read_over_many_reads_leaves_the_connection_able_to_rest() {
    let (_app, _gateway, metrics, mut stream) = a_rested_connection().await;

    // Just under the default body limit, in many reads.
    let body = vec![b'a'; 1000 * 1000];
    let head = format!(
        "POST /count HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(16 * 1024) {
        stream.write_all(chunk).unwrap();
    }
    assert_eq!(
        response(&mut stream),
        ("HTTP/1.1 200 OK".into(), r#"{"bytes":1000000}"#.into())
    );
    // Followed to the last byte: the connection rests again and serves on.
    wait_resting(metrics, 1).await;
    stream.write_all(b"GET /hit HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(response(&mut stream).1, r#"{"hits":2}"#);
}
