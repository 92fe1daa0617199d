// A site with one set of headers, on ports 80 and 443 of one loopback
// address, for comparing `portcullis audit`'s grade with the Observatory's.
//
//   node target.mjs ADDRESS SCENARIO CERT KEY
//
// Prints "ready" once both ports listen. Each scenario says what "/" answers
// over HTTP and over HTTPS (null: that port is closed), what the CORS
// preflight gets, and where redirects go.
import http from "node:http";
import https from "node:https";
import fs from "node:fs";

const [address, name, certFile, keyFile] = process.argv.slice(2);
const at = (n) => address.replace(/\.\d+$/, `.${n}`);

const page = (scripts = "", head = "") =>
  `<!doctype html><html><head><title>t</title>${head}</head><body><h1>t</h1>${scripts}</body></html>`;
const html = ["Content-Type", "text/html; charset=utf-8"];
const helmet = [
  ["Content-Security-Policy", "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"],
  ["Cross-Origin-Resource-Policy", "same-origin"],
  ["Referrer-Policy", "no-referrer"],
  ["Strict-Transport-Security", "max-age=31536000; includeSubDomains"],
  ["X-Content-Type-Options", "nosniff"],
  ["X-Frame-Options", "SAMEORIGIN"],
];

const scenarios = {
  // An Express app as `express()` makes it: plain HTTP, no headers.
  bare: {
    http: { headers: [html, ["X-Powered-By", "Express"], ["Set-Cookie", "connect.sid=s%3Aabc; Path=/; HttpOnly"]],
      body: page('<script src="/app.js"></script><script src="http://cdn.example.com/jquery.js"></script>') },
    https: null,
  },
  // helmet's defaults behind TLS, with a redirect and a good session cookie.
  helmet: {
    http: { status: 301, headers: [["Location", `https://${address}/`]] },
    https: { headers: [html, ...helmet, ["Set-Cookie", "__Host-sess=1; Path=/; Secure; HttpOnly; SameSite=Lax"]],
      body: page('<script src="/app.js"></script>') },
  },
  // Unsafe choices everywhere, and a redirect through plain HTTP first.
  unsafe: {
    http: { status: 302, headers: [["Location", `http://${address}/next`]] },
    httpPaths: { "/next": { status: 301, headers: [["Location", `https://${address}/`]] } },
    https: { headers: [html,
      ["Content-Security-Policy", "script-src 'self' 'unsafe-inline' 'unsafe-eval'; object-src 'none'"],
      ["X-Content-Type-Options", "nosniff"], ["X-Content-Type-Options", "nosniff"],
      ["X-Frame-Options", "ALLOW-FROM https://a.example"],
      ["Referrer-Policy", "unsafe-url"],
      ["Strict-Transport-Security", "max-age=86400"],
      ["Set-Cookie", "csrftoken=x; Secure"],
      ["Set-Cookie", "sessionid=y; Secure; SameSite=None"]],
      body: page('<script src="https://cdn.example.net/lib.js"></script>') },
  },
  // Policies from two headers and a <meta>, other sites' scripts, CORS for
  // everyone, and a redirect to HTTPS on another host.
  policies: {
    http: { status: 301, headers: [["Location", `https://${at(5)}/`]] },
    https: { headers: [html,
      ["Content-Security-Policy", "default-src 'self' https://a.example; img-src *"],
      ["Content-Security-Policy", "default-src 'self'"],
      ["Strict-Transport-Security", "max-age=31536000; includeSubDomains; preload"]],
      body: page('<script src="https://cdn.example.net/lib.js" integrity="sha384-x" crossorigin="anonymous"></script><script src="//cdn.example.org/x.js"></script><script>inline()</script>',
        `<meta http-equiv="Content-Security-Policy" content="script-src 'self' 'nonce-abc' 'strict-dynamic' https:"><meta name="referrer" content="no-referrer">`) },
    cors: [["Access-Control-Allow-Origin", "*"]],
  },
  // Nearly perfect, and the preflight reflected with credentials.
  strict: {
    http: { status: 308, headers: [["Location", `https://${address}/`]] },
    https: { headers: [html,
      ["Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'; report-uri /a; report-uri /b"],
      ["X-Content-Type-Options", "nosniff"],
      ["Referrer-Policy", "strict-origin-when-cross-origin"],
      ["Cross-Origin-Resource-Policy", "same-site"],
      ["Strict-Transport-Security", "max-age=63072000"],
      ["Set-Cookie", "prefs=1; Secure; SameSite=Strict"]],
      body: page() },
    corsReflect: true,
  },
  // Only a report-only policy, headers sent twice or misspelt, HTTPS only.
  odd: {
    http: null,
    https: { headers: [html,
      ["Content-Security-Policy-Report-Only", "default-src 'self'"],
      ["X-Frame-Options", "SAMEORIGIN"], ["X-Frame-Options", "DENY"],
      ["Cross-Origin-Resource-Policy", "cross-site"],
      ["Strict-Transport-Security", "includeSubDomains"],
      ["Referrer-Policy", "no-referrer"], ["Referrer-Policy", "unsafe-url"],
      ["Set-Cookie", "a=1; Secure; SameSite"]],
      body: page('<script src="https://cdn.example.net/x.js"></script>') },
  },
  // A certificate nobody trusts (the test gives neither tool its CA).
  untrusted: {
    http: { status: 301, headers: [["Location", `https://${address}/`]] },
    https: { headers: [html, ["X-Content-Type-Options", "nosniff"], ["Strict-Transport-Security", "max-age=31536000"]], body: page() },
  },
  // A JSON API that wants a login.
  api: {
    http: { status: 301, headers: [["Location", `https://${address}/`]] },
    https: { status: 401, headers: [["Content-Type", "application/json"], ...helmet.slice(1)], body: '{"error":"login"}' },
  },
  // No page at "/": neither tool grades it.
  missing: {
    http: { status: 404, headers: [html], body: page() },
    https: null,
  },
};

const scenario = scenarios[name];
if (!scenario) {
  console.error(`unknown scenario ${name}`);
  process.exit(2);
}

function answer(spec, paths, req, res) {
  const path = req.url.split("?")[0];
  if (req.method === "OPTIONS") {
    const headers = (scenario.cors ?? []).flat();
    if (scenario.corsReflect && req.headers.origin) {
      headers.push("Access-Control-Allow-Origin", req.headers.origin, "Access-Control-Allow-Credentials", "true");
    }
    res.writeHead(204, headers);
    return res.end();
  }
  const chosen = path === "/" ? spec : paths?.[path];
  if (!chosen) {
    res.writeHead(404, ["Content-Type", "text/plain"]);
    return res.end("not found");
  }
  res.writeHead(chosen.status ?? 200, chosen.headers.flat());
  res.end(chosen.body ?? "");
}

let waiting = 0;
const ready = () => --waiting === 0 && console.log("ready");
if (scenario.http) {
  waiting++;
  http.createServer((req, res) => answer(scenario.http, scenario.httpPaths, req, res)).listen(80, address, ready);
}
if (scenario.https) {
  waiting++;
  const tls = { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
  https.createServer(tls, (req, res) => answer(scenario.https, null, req, res)).listen(443, address, ready);
}
