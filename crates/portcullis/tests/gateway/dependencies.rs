//! `portcullis audit PATH` on real lockfiles (OWASP NodeGoat's in npm,
//! yarn and pnpm form, DVNA's and the example app's), against an
//! independent computation of the same answer by node (npm's own `semver`,
//! yarn's own lockfile parser) over the same advisory records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../portcullis-audit/fixtures")
}

fn audit(dir: &Path) -> (Option<i32>, serde_json::Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("audit")
        .arg(dir)
        .args(["--format", "json", "--advisories"])
        .arg(fixtures().join("advisories"))
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), report)
}

/// `name@version` → advisory ids, as the audit reports them.
fn ours(report: &serde_json::Value) -> BTreeMap<String, Vec<String>> {
    let mut found = BTreeMap::new();
    for finding in report["findings"].as_array().unwrap() {
        if finding["rule"] != "dependencies.vulnerable" {
            continue;
        }
        let title = finding["title"].as_str().unwrap();
        let mut words = title.split([' ', ':']);
        let (name, version) = (words.next().unwrap(), words.next().unwrap());
        let mut ids: Vec<String> = finding["evidence"]["excerpt"]
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("GHSA-"))
            .map(|l| l.split(' ').next().unwrap().to_owned())
            .collect();
        ids.sort();
        found.insert(format!("{name}@{version}"), ids);
    }
    found
}

/// The same, by node and npm's semver (tests/semver/affected.js).
fn theirs(lockfile: &Path) -> BTreeMap<String, Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/semver");
    crate::harness::npm_ci_once(&dir);
    let output = Command::new("node")
        .arg("affected.js")
        .arg(lockfile)
        .arg(fixtures().join("advisories"))
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn vulnerable_packages_equal_an_independent_computation_with_npms_semver() {
    let projects = [
        (fixtures().join("projects/nodegoat"), "package-lock.json"),
        (fixtures().join("projects/nodegoat-yarn"), "yarn.lock"),
        (fixtures().join("projects/nodegoat-berry"), "yarn.lock"),
        (fixtures().join("projects/nodegoat-pnpm"), "pnpm-lock.yaml"),
        (fixtures().join("projects/dvna"), "package-lock.json"),
        (fixtures().join("projects/workspaces"), "package-lock.json"),
        (fixtures().join("projects/workspaces-yarn"), "yarn.lock"),
        (crate::harness::app_dir(), "package-lock.json"),
    ];
    for (project, lockfile) in projects {
        let (_, report) = audit(&project);
        let expected = theirs(&project.join(lockfile));
        assert_eq!(ours(&report), expected, "{}: {report:#}", project.display());
        assert!(report["scope"].as_str().unwrap().contains(lockfile), "{report:#}");
    }
}

#[test]
fn nodegoat_is_reported_with_paths_dev_flags_fixes_and_its_deprecated_packages() {
    let (code, report) = audit(&fixtures().join("projects/nodegoat"));
    // Critical findings (minimist): the default --fail-on is high.
    assert_eq!(code, Some(1));
    assert_eq!(
        report["scope"],
        "1479 installed packages, from package-lock.json v2; 6 source files"
    );
    let findings = report["findings"].as_array().unwrap();
    let titled = |start: &str| {
        findings
            .iter()
            .find(|f| f["title"].as_str().unwrap().starts_with(start))
            .unwrap_or_else(|| panic!("no finding titled {start:?} in {report:#}"))
    };
    let qs = titled("qs 6.5.2:");
    let excerpt = qs["evidence"]["excerpt"].as_str().unwrap();
    assert!(
        excerpt.contains("owasp-nodejs-goat > express@4.16.4 > qs@6.5.2"),
        "{excerpt}"
    );
    assert!(excerpt.contains("affected >=6.5.0 <6.5.3"), "{excerpt}");
    assert!(
        qs["fix"]
            .as_str()
            .unwrap()
            .contains("\"overrides\": { \"qs\": \"6.5.3\" }"),
        "{qs:#}"
    );
    assert_eq!(qs["evidence"]["line"], 12723);
    // A direct dependency is upgraded directly.
    let express = titled("express 4.16.4:");
    assert!(
        express["fix"]
            .as_str()
            .unwrap()
            .starts_with("npm install express@4.19.2"),
        "{express:#}"
    );
    assert!(titled("lodash 4.17.20 (development only)")["severity"] == "high");
    assert!(titled("csurf is installed")["rule"] == "project.deprecated-package");
}

#[test]
fn a_broken_lockfile_exits_2_naming_the_file_and_line() {
    let dir = crate::harness::TempDir::new();
    std::fs::write(dir.0.join("package.json"), "{\"name\": \"x\"}").unwrap();
    std::fs::write(
        dir.0.join("package-lock.json"),
        "{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n    \"\": {\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("audit")
        .arg(&dir.0)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("package-lock.json:5:"), "{stderr}");
}

#[test]
fn a_lockfile_that_disagrees_with_package_json_is_reported() {
    let dir = crate::harness::TempDir::new();
    std::fs::write(
        dir.0.join("package.json"),
        r#"{"name": "shop", "dependencies": {"express": "^5.0.0", "helmet": "^8"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.0.join("package-lock.json"),
        r#"{"name": "shop", "lockfileVersion": 3, "packages": {
            "": {"name": "shop", "dependencies": {"express": "^4.16.0"}},
            "node_modules/express": {"version": "4.16.4"}}}"#,
    )
    .unwrap();
    let (_, report) = audit(&dir.0);
    let stale = first_finding(&report, |f| f["rule"] == "project.lockfile-out-of-date");
    let excerpt = stale["evidence"]["excerpt"].as_str().unwrap();
    assert!(excerpt.contains("express@^5.0.0: the lockfile has 4.16.4"), "{excerpt}");
    assert!(excerpt.contains("helmet@^8: not in the lockfile"), "{excerpt}");
    // And the locked Express is what gets checked, as npm ci would install it.
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["title"].as_str().unwrap().starts_with("express 4.16.4")));
}

/// A one-file HTTP server on loopback: every request gets `body`.
fn serve(body: Vec<u8>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
        }
    });
    port
}

#[test]
fn advisories_update_downloads_a_zip_that_the_audit_then_reads() {
    let work = crate::harness::TempDir::new();
    let zip = work.0.join("all.zip");
    // The fixture records zipped as OSV zips them (python3's zipfile).
    let status = Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile, pathlib; z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED); [z.write(p, p.name) for p in pathlib.Path(sys.argv[2]).glob('*.json')]; z.close()")
        .arg(&zip)
        .arg(fixtures().join("advisories"))
        .status()
        .unwrap();
    assert!(status.success());
    let database = work.0.join("db");
    let update = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args([
                "advisories",
                "update",
                "--from",
                &format!("http://127.0.0.1:{port}/npm/all.zip"),
                "--to",
            ])
            .arg(&database)
            .output()
            .unwrap()
    };
    let output = update(serve(std::fs::read(&zip).unwrap()));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("(6 advisories)"));
    let audited = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("audit")
        .arg(fixtures().join("projects/nodegoat"))
        .args(["--format", "json", "--advisories"])
        .arg(&database)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&audited.stdout).unwrap();
    assert_eq!(
        ours(&report),
        theirs(&fixtures().join("projects/nodegoat/package-lock.json"))
    );
    // Something that is not a zip is refused, and the database kept.
    let output = update(serve(b"<html>captive portal</html>".to_vec()));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a zip"));
    assert!(database.join("npm-all.zip").is_file());
}

/// The code rules' findings, as (file:line, rule), sorted.
/// The report's first finding `wanted` holds for; the report when none.
fn first_finding(report: &serde_json::Value, wanted: impl Fn(&serde_json::Value) -> bool) -> &serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| wanted(f))
        .unwrap_or_else(|| panic!("no such finding in {report:#}"))
}

fn code_findings(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["item"] == "C17" || f["item"] == "C18")
        .map(|f| {
            (
                format!(
                    "{}:{}",
                    f["evidence"]["location"].as_str().unwrap(),
                    f["evidence"]["line"]
                ),
                f["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn the_example_apps_code_is_read_and_exactly_its_flaws_reported() {
    let (_, report) = audit(&crate::harness::app_dir());
    // Written from reading examples/express-app/app.js.
    let expected: Vec<(String, String)> = [
        ("app.js:14", "code.no-helmet"),
        ("app.js:51", "code.hardcoded-secret"),
        ("app.js:51", "code.session-cookie-flags"),
        ("app.js:51", "code.session-default-name"),
        ("app.js:56", "code.hardcoded-secret"),
        ("app.js:56", "code.session-cookie-flags"),
        ("app.js:56", "code.session-default-name"),
    ]
    .iter()
    .map(|(at, rule)| (at.to_string(), rule.to_string()))
    .collect();
    assert_eq!(code_findings(&report), expected, "{report:#}");
    let secret = first_finding(&report, |f| {
        f["rule"] == "code.hardcoded-secret" && f["evidence"]["line"] == 56
    });
    assert_eq!(secret["evidence"]["column"], 17);
    assert!(secret["title"].as_str().unwrap().contains("keyboard cat"));
}

#[test]
fn dvnas_sql_and_command_injections_and_its_other_flaws_are_found_exactly() {
    let (_, report) = audit(&fixtures().join("projects/dvna"));
    // Written from reading DVNA's core/appHandler.js and server.js.
    let expected: Vec<(String, String)> = [
        ("core/appHandler.js:1", "code.no-use-strict"),
        // userSearch: "SELECT ... login='" + req.body.login + "'" into sequelize.query.
        ("core/appHandler.js:11", "taint.sql-injection"),
        // ping: exec('ping -c 2 ' + req.body.address).
        ("core/appHandler.js:39", "taint.command-injection"),
        // redirect: res.redirect(req.query.url).
        ("core/appHandler.js:188", "taint.open-redirect"),
        // calc: mathjs.eval(req.body.eqn).
        ("core/appHandler.js:197", "taint.code-injection"),
        // bulkProductsLegacy: node-serialize's unserialize of the upload.
        ("core/appHandler.js:218", "taint.deserialization"),
        // bulkProducts: libxmljs with noent: true.
        ("core/appHandler.js:235", "code.xml-external-entities"),
        ("server.js:1", "code.no-use-strict"),
        ("server.js:11", "code.no-helmet"),
        ("server.js:23", "code.hardcoded-secret"),
        ("server.js:23", "code.session-cookie-flags"),
        ("server.js:23", "code.session-default-name"),
    ]
    .iter()
    .map(|(at, rule)| (at.to_string(), rule.to_string()))
    .collect();
    let mut expected = expected;
    expected.sort();
    // Known clean: listProducts, productSearch (Op.like with a bound value),
    // modifyProduct and modifyProductSubmit (where objects, not the request's
    // own), userEdit, listUsersAPI: none of their lines may appear.
    assert_eq!(code_findings(&report), expected, "{report:#}");
    let sql = first_finding(&report, |f| f["rule"] == "taint.sql-injection");
    let path = sql["evidence"]["excerpt"].as_str().unwrap();
    assert!(
        path.contains(
            "from core/appHandler.js:10: var query = \"SELECT name,id FROM Users WHERE login='\" + req.body.login"
        ),
        "{path}"
    );
}

#[test]
fn nodegoats_eval_redirect_where_and_redos_are_found_exactly() {
    let (_, report) = audit(&fixtures().join("projects/nodegoat"));
    // Written from reading NodeGoat's contributions.js, index.js, profile.js,
    // allocations.js with its DAO, and server.js.
    let mut expected: Vec<(String, String)> = [
        // The threshold from req.query, passed by the allocations route to
        // its DAO, which builds a $where of it (another file).
        ("app/data/allocations-dao.js:78", "taint.nosql-injection"),
        // handleContributionsUpdate: eval(req.body.preTax), afterTax, roth.
        ("app/routes/contributions.js:32", "taint.code-injection"),
        ("app/routes/contributions.js:33", "taint.code-injection"),
        ("app/routes/contributions.js:34", "taint.code-injection"),
        // The "learn" route: res.redirect(req.query.url).
        ("app/routes/index.js:72", "taint.open-redirect"),
        // The bank routing number checked with /([0-9]+)+\#/: exponential.
        ("app/routes/profile.js:59", "code.redos"),
        ("server.js:15", "code.no-helmet"),
        // swig.setDefaults({ autoescape: false }): every template's output raw.
        ("server.js:137", "code.template-escaping-off"),
        // express-session with the default name and no secure or sameSite.
        ("server.js:78", "code.session-cookie-flags"),
        ("server.js:78", "code.session-default-name"),
    ]
    .iter()
    .map(|(at, rule)| (at.to_string(), rule.to_string()))
    .collect();
    expected.sort();
    assert_eq!(code_findings(&report), expected, "{report:#}");
    let nosql = first_finding(&report, |f| f["rule"] == "taint.nosql-injection");
    let path = nosql["evidence"]["excerpt"].as_str().unwrap();
    assert!(
        path.contains("from app/routes/allocations.js:21: } = req.query;"),
        "{path}"
    );
    assert!(
        path.contains("from app/routes/allocations.js:23: allocationsDAO.getByUserIdAndThreshold(userId, threshold"),
        "{path}"
    );
}
