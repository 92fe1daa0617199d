use portcullis_core::waf::{command, decode, sqli, xss};
fn main() {
    let detector = std::env::var("DET").unwrap_or("sqli".into());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show = std::env::var("SHOW").is_ok();
    let raw = std::env::var("RAW").is_ok();
    for path in &args {
        let text = std::fs::read(path).unwrap();
        let (mut total, mut hit) = (0, 0);
        for line in text.split(|b| *b == b'\n') {
            if line.is_empty() || (line[0] == b'#' && !raw) {
                continue;
            }
            total += 1;
            let origin = if raw {
                decode::Origin::Plain
            } else {
                decode::Origin::Form
            };
            let sp = decode::spellings(line, origin);
            let found = sp
                .iter()
                .filter_map(|(t, _)| match detector.as_str() {
                    "xss" => xss::inspect(t),
                    "cmd" => command::inspect(t),
                    _ => sqli::inspect(t),
                })
                .map(|h| h.score)
                .max()
                .unwrap_or(0);
            if found >= 5 {
                hit += 1;
                if show && path.contains("false") {
                    println!("  FP {}", String::from_utf8_lossy(line));
                }
            } else if show && !path.contains("false") {
                println!("  MISS({found}) {}", String::from_utf8_lossy(line));
            }
        }
        println!("{hit}/{total} {path}");
    }
}
