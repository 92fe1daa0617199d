//! What the WAF costs per request: `cargo bench -p portcullis-core --bench waf`.
//!
//! A typical GET (a 200-byte query, a browser's headers and cookies), a 2 KiB
//! form, a 64 KiB JSON document, and the most expensive 64 KiB inputs built
//! for each detector (long runs of the characters each one reacts to).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::{HeaderMap, HeaderValue};
use portcullis_core::waf::walk::BodyKind;
use portcullis_core::waf::{Waf, WafConfig};

const QUERY: &str = "q=blue+running+shoes+for+women&size=38&color=navy&brand=acme&sort=price_asc&page=2&per_page=24&utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale&ref=homepage_banner&session=4f2a9c";

fn browser_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        &mut headers,
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    );
    set(
        &mut headers,
        "referer",
        "https://shop.example.com/category/shoes?sort=popular",
    );
    set(&mut headers, "cookie", "connect.sid=s%3AJHm0ZnBcB5vGRy7ZxCYxQpbVmBRnFy3J.sQ9zS3rT4aB%2Bcd5Ef6Gh7Ij8Kl9Mn0Op1Qr2St3Uv; theme=dark; consent=analytics%3Dfalse");
    set(
        &mut headers,
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    );
    headers
}

/// `count` sets of `headers`, each with its own browser version and session.
fn strangers(headers: &HeaderMap, count: usize) -> Vec<HeaderMap> {
    (0..count)
        .map(|i| {
            let mut headers = headers.clone();
            let agent = format!("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.{i}.0 Safari/537.36");
            let cookie = format!("connect.sid=s%3AJHm0ZnBcB5vGRy7ZxCYxQpbVmB{i:08}.sQ9zS3rT4aB%2Bcd5Ef6Gh7Ij8Kl9Mn0Op1Qr2St3Uv; theme=dark; consent=analytics%3Dfalse");
            headers.insert("user-agent", HeaderValue::from_str(&agent).unwrap());
            headers.insert("cookie", HeaderValue::from_str(&cookie).unwrap());
            headers
        })
        .collect()
}

fn form_body() -> String {
    let text = "I ordered the blue running shoes last week and they arrived quickly. The fit is true to size, the cushioning is great for long runs, and the colour matches the photos. ";
    let message: String = text.repeat(12).chars().take(1900).collect();
    format!(
        "name=Ada+Lovelace&email=ada%40example.com&subject=Order+question&message={}",
        message.replace(' ', "+").replace(',', "%2C")
    )
}

fn json_body() -> String {
    let mut items = Vec::new();
    let mut i = 0;
    while items.iter().map(String::len).sum::<usize>() < 64 * 1024 {
        items.push(format!(
            r#"{{"id":{i},"name":"Product {i}","description":"A comfortable chair with a walnut frame, linen seat and 5-year warranty.","tags":["home","office","chair"],"price":{}.99,"author":{{"name":"O'Brien","email":"obrien@example.com"}}}}"#,
            i * 3
        ));
        i += 1;
    }
    format!("[{}]", items.join(","))
}

/// The worst 64 KiB values: long runs of what each detector reads.
fn adversarial() -> Vec<(&'static str, String)> {
    let size = 64 * 1024;
    let fill = |unit: &str| unit.repeat(size / unit.len());
    vec![
        ("quotes", fill("'")),
        ("sql_operators", fill("1 or 1=1 and ")),
        ("sql_parens", fill("(")),
        ("sql_calls", fill("sleep(")),
        ("markup", fill("<a onclick=")),
        ("attribute_breakouts", fill("\" x=\"")),
        ("assignments", fill("x=")),
        ("handlers", fill("onclick=a")),
        ("quoted_urls", fill("'javascript:(")),
        ("closing_tags", fill("<a b=")),
        ("shell", fill(";id|`$(")),
        ("braces", fill("{{")),
        ("traversal", fill("../")),
        ("percent", fill("%25")),
        ("entities", fill("&#x27;")),
        ("urls", fill("http://a/")),
    ]
}

fn bench(c: &mut Criterion) {
    let waf = Waf::compile(WafConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let headers = browser_headers();
    c.bench_function("typical GET: 200-byte query, browser headers seen before", |b| {
        b.iter(|| waf.inspect("/search", Some(QUERY), &headers, None).score())
    });
    // Many more distinct values than the table of clean ones holds, so
    // nearly every header is inspected in full.
    let strangers = strangers(&headers, 4096);
    let mut next = strangers.iter().cycle();
    c.bench_function("typical GET: 200-byte query, browser headers never seen", |b| {
        b.iter(|| waf.inspect("/search", Some(QUERY), next.next().unwrap(), None).score())
    });
    let mut group = c.benchmark_group("bodies");
    for (name, path, kind, body) in [
        ("2 KiB form", "/contact", BodyKind::Form, form_body()),
        ("64 KiB JSON", "/api/items", BodyKind::Json, json_body()),
    ] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                waf.inspect(path, None, &headers, Some((&kind, body.as_bytes(), true)))
                    .score()
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("adversarial 64 KiB value");
    group.sample_size(10);
    for (name, value) in adversarial() {
        group.throughput(Throughput::Bytes(value.len() as u64));
        group.bench_function(name, |b| b.iter(|| waf.inspect_values(&[("q", &value)]).len()));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
