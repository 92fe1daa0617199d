use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{client, eventually, raw_exchange};
use crate::protected;

#[tokio::test]
async fn bodies_over_the_limit_are_413_declared_or_streamed() {
    let (_app, gateway) = protected("");
    let small = client()
        .post(gateway.url("/count"))
        .body(vec![b'x'; 512 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(small.text().await.unwrap(), "{\"bytes\":524288}");

    let declared = client()
        .post(gateway.url("/count"))
        .body(vec![b'x'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    assert_eq!(declared.headers()["x-content-type-options"], "nosniff");

    // Chunked: no Content-Length, so the gateway has to count as it streams.
    let chunks = (0..32).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 64 * 1024]));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let streamed = client().post(gateway.url("/count")).body(body).send().await.unwrap();
    assert_eq!(streamed.status(), 413);
    gateway.process.stdout.wait_for("\"max_body_bytes\"");
}

#[tokio::test]
async fn routes_can_allow_larger_bodies() {
    let config = "[[route]]\npath = \"/upload\"\nmethods = [\"POST\"]\n[route.limits]\nmax_body_bytes = 20000000\n";
    let (_app, gateway) = protected(config);
    let file = reqwest::multipart::Part::bytes(vec![7u8; 5 * 1024 * 1024]).file_name("photo.jpg");
    let form = reqwest::multipart::Form::new().part("file", file);
    let upload = client()
        .post(gateway.url("/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 200);
    assert_eq!(
        upload.text().await.unwrap(),
        "{\"name\":\"photo.jpg\",\"size\":5242880}"
    );
    // Elsewhere the default 1 MiB holds, and a client still sending its 5 MiB
    // receives the 413 rather than a reset connection.
    for _ in 0..3 {
        let elsewhere = client()
            .post(gateway.url("/count"))
            .body(vec![0u8; 5 * 1024 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(elsewhere.status(), 413);
    }
}

#[tokio::test]
async fn long_uris_are_414_and_large_headers_431() {
    let (_app, gateway) = protected("");
    let uri = client()
        .get(gateway.url(&format!("/?q={}", "a".repeat(9000))))
        .send()
        .await
        .unwrap();
    assert_eq!(uri.status(), 414);
    assert!(uri.text().await.unwrap().contains("414 URI Too Long"));
    let header = client()
        .get(gateway.url("/"))
        .header("x-big", "b".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 431);
    // Far past every limit, hyper's own parser refuses before the stack
    // runs; the client still gets the gateway's page, headers and event.
    let long_uri = format!("GET /?q={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let huge_header = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n", "h".repeat(200_000));
    for (request, status, rule) in [
        (long_uri, "414 URI Too Long", "max_uri_bytes"),
        (huge_header, "431 Request Header Fields Too Large", "max_header_bytes"),
    ] {
        let answer = raw_exchange(gateway.addr, request.as_bytes(), Duration::from_secs(5));
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{answer:.300}");
        assert!(answer.contains("x-content-type-options: nosniff"), "{answer}");
        assert!(answer.contains(&format!("<h1>{status}</h1>")), "{answer}");
        let id = answer.split("x-request-id: ").nth(1).unwrap().get(..32).unwrap();
        assert!(
            answer.contains(&format!("<code>{id}</code>")),
            "the page names its id: {answer}"
        );
        let event = gateway.process.stdout.wait_for(id);
        assert!(event.contains(&format!("\"rule\":\"{rule}\"")), "{event}");
    }
    // The same as a later request on a keep-alive connection, as scanners send it.
    let mut stream = after_one_request(gateway.addr);
    let long_uri = format!("GET /?q={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let _ = stream.write_all(long_uri.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{answer:.300}");
    assert!(answer.contains("<h1>414 URI Too Long</h1>"), "{answer}");
}

/// A keep-alive connection on which one whole request was answered 200 and
/// its response read to the end.
fn after_one_request(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(b"GET /hit HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    stream.read_exact(&mut vec![0u8; length]).unwrap();
    stream
}

#[tokio::test]
async fn malformed_http_gets_400_and_the_gateway_carries_on() {
    let (_app, gateway) = protected("");
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\n\r\n",
    ] {
        let answer = raw_exchange(gateway.addr, garbage, Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 400"), "{garbage:?} -> {answer:.80}");
        assert!(answer.contains("<h1>400 Bad Request</h1>"), "a neutral page: {answer}");
    }
    assert_eq!(client().get(gateway.url("/")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn slowloris_is_cut_off_while_others_are_served() {
    let (_app, gateway) = protected("[server]\nheader_read_timeout = \"1s\"\n");
    // Two keep-alive connections after one whole request: one goes idle, the
    // other sends part of a second head and stalls.
    let idle = after_one_request(gateway.addr);
    let mut second_head = after_one_request(gateway.addr);
    second_head.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let mut slow = TcpStream::connect(gateway.addr).unwrap();
    let mut silent = TcpStream::connect(gateway.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    // The slow client trickles header bytes; a normal client is served meanwhile.
    let trickle = std::thread::spawn(move || {
        for _ in 0..20 {
            if slow.write_all(b"X-a: b\r\n").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        let _ = slow.read_to_end(&mut rest);
        started.elapsed()
    });
    for _ in 0..3 {
        assert_eq!(client().get(gateway.url("/")).send().await.unwrap().status(), 200);
    }
    silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut nothing = Vec::new();
    let _ = silent.read_to_end(&mut nothing);
    let silent_closed = started.elapsed();
    let slow_closed = tokio::task::spawn_blocking(move || trickle.join().unwrap())
        .await
        .unwrap();
    assert!(
        slow_closed < Duration::from_millis(2500),
        "slowloris kept for {slow_closed:?}"
    );
    assert!(
        silent_closed < Duration::from_millis(2500),
        "silent connection kept for {silent_closed:?}"
    );
    assert!(nothing.is_empty());
    // Each cut slowloris (first head or second) is an event; the silent
    // connection (a browser may open one speculatively) and the idle
    // keep-alive one are not. All of them closed before the request whose
    // access line is waited for here, so all would have been logged by then.
    for mut stream in [idle, second_head] {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
    let event = gateway.process.stdout.wait_for("\"rule\":\"header_read_timeout\"");
    assert!(
        event.contains("\"action\":\"closed\"") && event.contains("127.0.0.1"),
        "{event}"
    );
    let response = client().get(gateway.url("/after")).send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    gateway.process.stdout.wait_for(&id);
    assert_eq!(gateway.process.stdout.count("header_read_timeout"), 2);
}

#[tokio::test]
async fn connections_per_ip_are_limited() {
    let (_app, gateway) = protected("[server]\nmax_connections_per_ip = 2\n");
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(gateway.addr).unwrap();
        stream.write_all(request).unwrap();
        let mut first = [0u8; 12];
        stream.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        held.push(stream);
    }
    let third = raw_exchange(gateway.addr, request, Duration::from_secs(5));
    assert!(third.starts_with("HTTP/1.1 429"), "{third:.80}");
    gateway.process.stdout.wait_for("\"max_connections_per_ip\"");
    assert!(third.contains("x-frame-options: SAMEORIGIN"));
    // Once the two close, the client is served again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while client().get(gateway.url("/")).send().await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "still refused after its connections closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A WebSocket keeps its connection's place within the per-IP limit for as
/// long as its tunnel lives, not just until the upgrade.
#[tokio::test]
async fn websocket_tunnels_count_within_the_per_ip_limit() {
    let (_app, gateway) = protected("[server]\nmax_connections_per_ip = 2\n");
    let mut tunnels = Vec::new();
    for _ in 0..2 {
        let (socket, answer) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gateway.addr))
            .await
            .unwrap();
        assert_eq!(answer.status(), 101);
        tunnels.push(socket);
    }
    let third = raw_exchange(
        gateway.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(third.starts_with("HTTP/1.1 429"), "{third:.80}");
    drop(tunnels);
    eventually(
        Duration::from_secs(10),
        "still refused after its tunnels closed",
        async || client().get(gateway.url("/")).send().await.unwrap().status() == 200,
    )
    .await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let (_app, gateway) = protected("[server]\nheader_read_timeout = \"5s\"\nkeep_alive_timeout = \"1s\"\n");
    // HTTP/1.1: one request, then silence.
    let mut h1 = TcpStream::connect(gateway.addr).unwrap();
    h1.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // HTTP/2: the connection preface and an empty SETTINGS frame, then silence.
    let mut h2 = TcpStream::connect(gateway.addr).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let started = Instant::now();
    for (name, mut stream) in [("http/1.1", h1), ("h2", h2)] {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received);
        let open_for = started.elapsed();
        assert!(!received.is_empty(), "{name}: the server answered first");
        assert!(
            open_for >= Duration::from_millis(900) && open_for < Duration::from_secs(3),
            "{name}: closed after {open_for:?}"
        );
    }
}

/// Random and mutated request bytes: every connection gets a 4xx answer or is
/// closed, the gateway never dies, and real clients are served throughout.
#[tokio::test]
async fn random_bytes_never_break_the_gateway() {
    let (_app, mut gateway) = protected(
        "[server]\nheader_read_timeout = \"150ms\"\nbody_read_timeout = \"150ms\"\nkeep_alive_timeout = \"150ms\"\n",
    );
    let seeds: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
    ];
    // A small deterministic generator, so a failure can be replayed.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..200 {
        let mut bytes = seeds[round % seeds.len()].to_vec();
        for _ in 0..(next() % 8) {
            let at = (next() as usize) % (bytes.len() + 1);
            match next() % 3 {
                0 if at < bytes.len() => bytes[at] = next() as u8,
                1 => bytes.insert(at, next() as u8),
                _ => bytes.truncate(at.max(1)),
            }
        }
        let answer = raw_exchange(gateway.addr, &bytes, Duration::from_secs(3));
        let status = answer.get(9..12).unwrap_or("");
        // A mutation may leave a valid request (2xx) or an HTTP/2 preface (the
        // answer is then HTTP/2 frames, starting with SETTINGS, type 4).
        let h2_frames = bytes.starts_with(b"PRI * HTTP/2.0") && answer.as_bytes().get(3) == Some(&4);
        assert!(
            answer.is_empty()
                || h2_frames
                || answer.starts_with("HTTP/1.1 ") && ["2", "3", "4"].iter().any(|class| status.starts_with(class)),
            "round {round}: {bytes:?} -> {answer:.120}"
        );
    }
    assert!(gateway.process.child.try_wait().unwrap().is_none(), "the gateway died");
    assert_eq!(client().get(gateway.url("/")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_stalled_request_body_is_408() {
    let (_app, gateway) = protected("[server]\nbody_read_timeout = \"500ms\"\n");
    let started = Instant::now();
    let head_and_some = b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
    let answer = raw_exchange(gateway.addr, head_and_some, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:.80}");
    assert!(started.elapsed() < Duration::from_secs(2));
    gateway.process.stdout.wait_for("\"body_read_timeout\"");
}

/// An upstream on loopback that takes one connection, reads the start of
/// the request, does `then` with the connection, and holds it for `hold`.
fn stub_upstream(hold: Duration, then: impl FnOnce(&mut TcpStream) + Send + 'static) -> std::net::SocketAddr {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = upstream.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        then(&mut stream);
        std::thread::sleep(hold);
    });
    address
}

#[tokio::test]
async fn an_upstream_that_stalls_mid_body_does_not_hold_the_client() {
    // An upstream that sends a head and half its body, then goes quiet.
    let address = stub_upstream(Duration::from_secs(5), |stream| {
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
            .unwrap();
    });
    let gateway = crate::harness::Gateway::start(
        &format!("http://{address}"),
        "[upstream]\nresponse_timeout = \"500ms\"\n",
    );
    let started = Instant::now();
    let response = client().get(gateway.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "the truncated body is reported as an error"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "held for {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_slow_steady_upload_outlasts_the_response_timeout() {
    let (_app, gateway) = protected("[server]\nbody_read_timeout = \"1s\"\n[upstream]\nresponse_timeout = \"1s\"\n");
    let mut stream = TcpStream::connect(gateway.addr).unwrap();
    stream
        .write_all(b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n")
        .unwrap();
    // 10 bytes every 400 ms: 4 s in all, four times the response timeout,
    // each gap well within the body read timeout.
    let started = Instant::now();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(400));
        stream.write_all(b"0123456789").unwrap();
    }
    let mut answer = String::new();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = stream.read_to_string(&mut answer);
    assert!(started.elapsed() > Duration::from_secs(3));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("{\"bytes\":100}"), "{answer}");
    assert!(!gateway.process.stdout.any_contains("\"response_timeout\""));
}

#[tokio::test]
async fn an_upstream_that_stops_reading_the_body_still_times_out() {
    // An upstream that reads the request head, then neither reads nor answers.
    let address = stub_upstream(Duration::from_secs(20), |_| {});
    let gateway = crate::harness::Gateway::start(
        &format!("http://{address}"),
        "[upstream]\nresponse_timeout = \"1s\"\n[limits]\nmax_body_bytes = 1073741824\n",
    );
    let mut stream = TcpStream::connect(gateway.addr).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let chunk = vec![b'x'; 1024 * 1024];
    // The socket buffers fill, then the gateway gives up on the upstream.
    while stream.write_all(&chunk).is_ok() && started.elapsed() < Duration::from_secs(10) {}
    gateway.process.stdout.wait_for("\"response_timeout\"");
}

#[tokio::test]
async fn framing_a_proxy_must_not_pass_on_is_refused_before_the_app() {
    let (app, gateway) = protected("");
    let exchange = |request: &str| raw_exchange(gateway.addr, request.as_bytes(), Duration::from_secs(5));
    for (request, status) in [
        (
            "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
            "400",
        ),
        ("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "400"),
        ("CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n", "405"),
        ("TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "405"),
    ] {
        let answer = exchange(request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:?} -> {answer:.200}"
        );
        assert!(
            answer.contains("x-content-type-options: nosniff"),
            "a neutral page: {answer}"
        );
    }
    assert_eq!(app.received().await, 0, "the app never saw them");
    gateway.process.stdout.wait_for("\"rule\":\"duplicate_host\"");
    gateway.process.stdout.wait_for("\"rule\":\"method\"");

    // Absolute form: the target's authority is the host, for the app and the
    // gateway's own policies alike (RFC 9112 §3.2.2).
    let answer = exchange("GET http://a.example/echo HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
    assert!(answer.contains("\"host\":\"a.example\""), "{answer}");
    assert!(answer.contains("\"url\":\"/echo\""), "{answer}");
}
