//! The pattern rules (C17), one pass over each file's AST: code built from
//! strings (`eval`, `new Function`, string timers), weak randomness where a
//! secret is made, weak or misused hashes and ciphers, `new Buffer`,
//! secrets written in the code, session middleware left at its defaults,
//! `jwt.verify` without `algorithms`, stack traces sent to the client, an
//! Express app without helmet, CommonJS without `'use strict'`.
//!
//! A `// portcullis-ignore RULE: reason` comment on the line or the line
//! above silences that rule there.

use std::collections::HashMap;

use oxc_ast::ast::*;
use oxc_ast_visit::{walk, Visit};
use oxc_span::{GetSpan, SourceType, Span};

use crate::report::{Evidence, Finding, Item, Severity};

/// Offsets to 1-based lines and columns.
pub struct Lines {
    starts: Vec<u32>,
    text_len: u32,
}

impl Lines {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i as u32 + 1));
        Self {
            starts,
            text_len: text.len() as u32,
        }
    }

    /// The text of 1-based `line` of `text` (the text these lines index),
    /// without its line break; empty past the end.
    pub fn line<'t>(&self, text: &'t str, line: u32) -> &'t str {
        let Some(&start) = self.starts.get((line as usize).wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .starts
            .get(line as usize)
            .map_or(text.len(), |&next| next as usize - 1);
        text.get(start as usize..end).unwrap_or_default().trim_end_matches('\r')
    }

    /// The line and column of byte `offset`.
    pub fn position(&self, offset: u32) -> (u32, u32) {
        let offset = offset.min(self.text_len);
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        (line as u32, offset - self.starts[line - 1] + 1)
    }
}

/// Names that say a value is a secret, an id or a token.
fn secret_like(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "nonce",
        "salt",
        "otp",
        "apikey",
        "api_key",
        "sessionid",
        "session_id",
        "csrf",
        "key",
        "uuid",
        "guid",
    ]
    .iter()
    .any(|word| name.contains(word))
        || name == "id"
        || name.ends_with("id")
}

fn password_like(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("password") || name.contains("passwd") || name.contains("pwd")
}

/// A string literal's value, or a template literal without expressions.
fn literal_string<'a>(expression: &'a Expression<'a>) -> Option<&'a str> {
    match expression.get_inner_expression() {
        Expression::StringLiteral(s) => Some(s.value.as_str()),
        Expression::TemplateLiteral(t) if t.expressions.is_empty() => t.quasis.first().map(|q| q.value.raw.as_str()),
        _ => None,
    }
}

fn is_literal(expression: &Expression) -> bool {
    literal_string(expression).is_some() || expression.get_inner_expression().is_literal()
}

/// `a.b` as text, for the callee names the rules look for.
fn dotted(expression: &Expression) -> Option<String> {
    match expression.get_inner_expression() {
        Expression::Identifier(id) => Some(id.name.to_string()),
        other => {
            let member = other.as_member_expression()?;
            Some(format!(
                "{}.{}",
                dotted(member.object())?,
                member.static_property_name()?
            ))
        }
    }
}

fn property<'a, 'b>(object: &'b ObjectExpression<'a>, name: &str) -> Option<&'b Expression<'a>> {
    object.properties.iter().find_map(|p| match p {
        ObjectPropertyKind::ObjectProperty(p) if p.key.static_name().is_some_and(|k| k == name) => Some(&p.value),
        _ => None,
    })
}

struct Checker<'t> {
    file: &'t str,
    text: &'t str,
    lines: &'t Lines,
    findings: Vec<Finding>,
    /// Local names bound to `require('module')` or imported from it.
    modules: HashMap<String, String>,
    /// The names of what is being defined around the current node.
    names: Vec<String>,
    express_app: Option<Span>,
    helmet: bool,
    powered_by_off: bool,
    /// A function of the file asks for strict mode itself.
    strict_function: bool,
}

/// A `// portcullis-ignore RULE: reason` comment on `line` or the one
/// above.
pub fn suppressed(text: &str, lines: &Lines, rule: &str, line: u32) -> bool {
    [line.saturating_sub(1), line]
        .into_iter()
        .map(|n| lines.line(text, n))
        .any(|l| {
            l.split("portcullis-ignore")
                .nth(1)
                .is_some_and(|rest| rest.trim_start().starts_with(rule))
        })
}

/// Where a finding is: the file, the line and column of `span`, and the
/// line's text.
pub fn evidence_at(file: &str, text: &str, lines: &Lines, span: Span) -> Evidence {
    let position = lines.position(span.start);
    let excerpt = lines.line(text, position.0).trim();
    Evidence::in_file_at(file, position, excerpt.chars().take(200).collect::<String>())
}

impl<'t> Checker<'t> {
    fn new(file: &'t str, text: &'t str, lines: &'t Lines) -> Self {
        Checker {
            file,
            text,
            lines,
            findings: Vec::new(),
            modules: HashMap::new(),
            names: Vec::new(),
            express_app: None,
            helmet: false,
            powered_by_off: false,
            strict_function: false,
        }
    }

    fn report(&mut self, rule: &'static str, severity: Severity, span: Span, title: String, fix: &str) {
        let evidence = evidence_at(self.file, self.text, self.lines, span);
        let line = evidence.line.unwrap_or_default();
        let again = self
            .findings
            .iter()
            .any(|f| f.rule == rule && f.evidence.line == Some(line));
        if again || suppressed(self.text, self.lines, rule, line) {
            return;
        }
        self.findings.push(Finding {
            rule,
            item: Item::C17,
            severity,
            title,
            evidence,
            fix: fix.into(),
        });
    }

    /// What module a callee's root name comes from (`crypto` for
    /// `crypto.createHash`, when `crypto = require('crypto')`).
    fn module_of(&self, callee: &str) -> Option<&str> {
        let root = callee.split('.').next()?;
        self.modules.get(root).map(String::as_str)
    }

    fn in_secret_context(&self) -> bool {
        self.names.iter().any(|n| secret_like(n))
    }

    fn in_password_context(&self, call: &CallExpression) -> bool {
        self.names.iter().any(|n| password_like(n))
            || call
                .arguments
                .iter()
                .filter_map(Argument::as_expression)
                .filter_map(dotted)
                .any(|a| password_like(&a))
    }

    fn call(&mut self, call: &CallExpression) {
        let first = call.arguments.first().and_then(Argument::as_expression);
        // `res.status(500).send(...)`: the last name, whatever comes before.
        let last_part = call.callee_name().unwrap_or_default().to_owned();
        self.chained(call, &last_part);
        self.xml_entities(call, &last_part);
        self.escaping_off(call);
        let Some(callee) = dotted(&call.callee) else {
            return;
        };
        let module = self.module_of(&callee).map(str::to_owned);
        match callee.as_str() {
            "eval" => {
                let dynamic = first.is_some_and(|a| !is_literal(a));
                self.report(
                    "code.eval",
                    if dynamic { Severity::High } else { Severity::Medium },
                    call.span,
                    if dynamic {
                        "eval() of a value built at run time".into()
                    } else {
                        "eval() of a literal".into()
                    },
                    "never eval: parse data with JSON.parse, look names up in a Map, or write the code itself",
                );
            }
            "setTimeout" | "setInterval" | "setImmediate" if first.is_some_and(|a| is_string_code(a)) => {
                self.report(
                    "code.string-timer",
                    Severity::Medium,
                    call.span,
                    format!("{callee}() with a string runs it as code"),
                    "pass a function: setTimeout(() => work(), 1000)",
                );
            }
            "Math.random" if self.in_secret_context() => {
                self.report(
                    "code.weak-random",
                    Severity::Medium,
                    call.span,
                    format!(
                        "Math.random() makes `{}`, which must not be guessable",
                        self.names.last().cloned().unwrap_or_default()
                    ),
                    "use crypto.randomBytes(32).toString('hex'), crypto.randomUUID() or crypto.randomInt()",
                );
            }
            "Buffer" => {
                self.report(
                    "code.new-buffer",
                    Severity::Medium,
                    call.span,
                    "Buffer() is deprecated: with a number it returns uninitialised memory".into(),
                    "Buffer.from(value) or Buffer.alloc(size)",
                );
            }
            _ => {}
        }
        if module.as_deref() == Some("crypto") || callee.starts_with("crypto.") {
            self.crypto(call, &last_part, first);
        }
        if matches!(module.as_deref(), Some("express-session" | "cookie-session")) && callee.split('.').count() == 1 {
            self.session(call, module.as_deref().unwrap_or_default());
        }
        if module.as_deref() == Some("jsonwebtoken") {
            self.jwt(call, &last_part);
        }
        if module.as_deref() == Some("express") && callee.split('.').count() == 1 && self.express_app.is_none() {
            self.express_app = Some(call.span);
        }
        if module.as_deref() == Some("helmet") {
            self.helmet = true;
        }
    }

    /// libxmljs with `noent: true` expands external entities: XXE.
    fn xml_entities(&mut self, call: &CallExpression, method: &str) {
        if !matches!(method, "parseXmlString" | "parseXml" | "parseHtmlString") {
            return;
        }
        let expands = call.arguments.iter().filter_map(Argument::as_expression).any(|a| {
            matches!(a.get_inner_expression(), Expression::ObjectExpression(o)
                if property(o, "noent").is_some_and(|v| matches!(v.get_inner_expression(), Expression::BooleanLiteral(b) if b.value)))
        });
        if expands {
            self.report(
                "code.xml-external-entities",
                Severity::High,
                call.span,
                format!("{method}() with noent: true expands external entities (XXE: files and URLs read into the document)"),
                "leave noent off (libxmljs's default), or parse with a parser that never expands entities",
            );
        }
    }

    /// A template engine told not to escape what it outputs:
    /// `swig.setDefaults({ autoescape: false })`, nunjucks's
    /// `configure({ autoescape: false })`, Handlebars's `compile(t, {
    /// noEscape: true })`. Every `{{ x }}` is then raw HTML.
    fn escaping_off(&mut self, call: &CallExpression) {
        let Some(callee) = dotted(&call.callee) else { return };
        // The engine by its require, or by the name it is usually given
        // (`Handlebars.compile`), for code that gets it from elsewhere.
        let engine = self
            .module_of(&callee)
            .map(str::to_owned)
            .or_else(|| callee.split('.').next().map(str::to_ascii_lowercase));
        let Some(engine) = engine.filter(|m| {
            matches!(
                m.as_str(),
                "swig" | "swig-templates" | "nunjucks" | "handlebars" | "hbs"
            )
        }) else {
            return;
        };
        let off =
            call.arguments
                .iter()
                .filter_map(Argument::as_expression)
                .find_map(|a| match a.get_inner_expression() {
                    Expression::ObjectExpression(o) => o.properties.iter().find_map(|p| match p {
                        ObjectPropertyKind::ObjectProperty(p) => {
                            let key = p.key.static_name()?;
                            let value = match p.value.get_inner_expression() {
                                Expression::BooleanLiteral(b) => b.value,
                                _ => return None,
                            };
                            ((key == "autoescape" && !value) || (key == "noEscape" && value))
                                .then_some((p.span, key.to_string()))
                        }
                        _ => None,
                    }),
                    _ => None,
                });
        if let Some((span, key)) = off {
            self.report(
                "code.template-escaping-off",
                Severity::High,
                span,
                format!("{engine}'s output escaping is turned off ({key}): every value a template prints is raw HTML (XSS)"),
                "leave escaping on (the engine's default); mark the few values that are meant as HTML with the engine's safe filter after sanitizing them",
            );
        }
    }

    /// The rules that need only the method's name, not the whole callee:
    /// `res.status(500).send(err.stack)`, `createHash(...).update(password)`.
    fn chained(&mut self, call: &CallExpression, method: &str) {
        let first = call.arguments.first().and_then(Argument::as_expression);
        if method == "disable"
            && first
                .and_then(literal_string)
                .is_some_and(|s| s.eq_ignore_ascii_case("x-powered-by"))
        {
            self.powered_by_off = true;
        }
        if matches!(method, "send" | "json" | "end" | "write" | "render")
            && call
                .arguments
                .iter()
                .filter_map(Argument::as_expression)
                .any(mentions_stack)
        {
            self.report(
                "code.stack-sent",
                Severity::Medium,
                call.span,
                "An error's stack is sent to the client".into(),
                "log err.stack on the server; send a generic message (and a request id)",
            );
        }
        let hashing = call
            .callee
            .as_member_expression()
            .map(|m| m.object().get_inner_expression())
            .is_some_and(
                |o| matches!(o, Expression::CallExpression(inner) if inner.callee_name() == Some("createHash")),
            );
        if method == "update" && hashing && self.in_password_context(call) {
            self.report(
                "code.password-hash",
                Severity::High,
                call.span,
                "A password hashed with crypto.createHash: fast hashes are brute-forced offline".into(),
                "argon2id (the argon2 package) or bcrypt, with their own salts",
            );
        }
    }

    fn crypto(&mut self, call: &CallExpression, function: &str, first: Option<&Expression>) {
        match function {
            "createCipher" | "createDecipher" => self.report(
                "code.deprecated-cipher",
                Severity::High,
                call.span,
                format!("crypto.{function}() derives its key with one MD5 and no salt, and takes no IV"),
                "crypto.createCipheriv('aes-256-gcm', key, iv) with a random 12-byte IV and a key from scrypt",
            ),
            "createHash" => {
                let algorithm = first.and_then(literal_string).unwrap_or_default().to_ascii_lowercase();
                if self.in_password_context(call) {
                    self.report(
                        "code.password-hash",
                        Severity::High,
                        call.span,
                        format!("A password hashed with crypto.createHash('{algorithm}'): fast hashes are brute-forced offline"),
                        "argon2id (the argon2 package) or bcrypt, with their own salts",
                    );
                } else if matches!(algorithm.as_str(), "md5" | "sha1" | "md4") {
                    self.report(
                        "code.weak-hash",
                        Severity::Medium,
                        call.span,
                        format!("crypto.createHash('{algorithm}'): collisions are cheap to make"),
                        "sha256 or better; for passwords, argon2id or bcrypt",
                    );
                }
            }
            _ => {}
        }
    }

    fn session(&mut self, call: &CallExpression, module: &str) {
        let Some(Expression::ObjectExpression(options)) = call.arguments.first().and_then(Argument::as_expression)
        else {
            return;
        };
        for key in ["secret", "keys"] {
            let secret = property(options, key).map(Expression::get_inner_expression);
            let literal = match secret {
                Some(Expression::ArrayExpression(list)) => list
                    .elements
                    .iter()
                    .filter_map(ArrayExpressionElement::as_expression)
                    .find_map(literal_string)
                    .map(str::to_owned),
                Some(Expression::LogicalExpression(or)) => literal_string(&or.right).map(str::to_owned),
                Some(other) => literal_string(other).map(str::to_owned),
                None => None,
            };
            if let Some(value) = literal {
                self.report(
                    "code.hardcoded-secret",
                    Severity::High,
                    options.span,
                    format!("{module}'s {key} is written in the code (`{}`): anyone with the source can forge sessions", value.chars().take(24).collect::<String>()),
                    "read it from the environment (process.env.SESSION_SECRET) with no fallback, and rotate the one in the code",
                );
            }
        }
        if property(options, "name").is_none() {
            self.report(
                "code.session-default-name",
                Severity::Low,
                options.span,
                format!("{module} keeps its default cookie name, which names the framework"),
                "name: 'id' (or any name of your own)",
            );
        }
        let cookie = match property(options, "cookie").map(Expression::get_inner_expression) {
            Some(Expression::ObjectExpression(cookie)) => Some(&**cookie),
            _ => None,
        };
        let flags_from = cookie.unwrap_or(options);
        // Absent, or set to false: off.
        let missing: Vec<&str> = ["secure", "httpOnly", "sameSite"]
            .into_iter()
            .filter(|flag| {
                property(flags_from, flag)
                    .is_none_or(|v| matches!(v.get_inner_expression(), Expression::BooleanLiteral(b) if !b.value))
            })
            .collect();
        // Both default httpOnly to true; secure and sameSite they leave off.
        let missing: Vec<&str> = missing.into_iter().filter(|flag| *flag != "httpOnly").collect();
        if !missing.is_empty() {
            self.report(
                "code.session-cookie-flags",
                Severity::Medium,
                options.span,
                format!("{module}'s cookie is set without {}", missing.join(", ")),
                "cookie: { secure: true, httpOnly: true, sameSite: 'lax' } (behind a proxy, also app.set('trust proxy', 1))",
            );
        }
    }

    fn jwt(&mut self, call: &CallExpression, function: &str) {
        let key = call.arguments.get(1).and_then(Argument::as_expression);
        if matches!(function, "sign" | "verify") {
            if let Some(secret) = key.and_then(literal_string) {
                self.report(
                    "code.hardcoded-secret",
                    Severity::High,
                    call.span,
                    format!(
                        "jwt.{function}() with a key written in the code (`{}`)",
                        secret.chars().take(24).collect::<String>()
                    ),
                    "read the key from the environment or a secret store",
                );
            }
        }
        if function == "verify" {
            let options = call.arguments.get(2).and_then(Argument::as_expression);
            let has_algorithms = matches!(options.map(Expression::get_inner_expression), Some(Expression::ObjectExpression(o)) if property(o, "algorithms").is_some());
            if !has_algorithms {
                self.report(
                    "code.jwt-algorithms",
                    Severity::Medium,
                    call.span,
                    "jwt.verify() without `algorithms`: the token's own header chooses how it is checked".into(),
                    "jwt.verify(token, key, { algorithms: ['HS256'] }) (the one you sign with)",
                );
            }
        }
    }
}

/// A string, a template or a concatenation: code as text.
fn is_string_code(expression: &Expression) -> bool {
    match expression.get_inner_expression() {
        Expression::StringLiteral(_) | Expression::TemplateLiteral(_) => true,
        Expression::BinaryExpression(b) => {
            b.operator == BinaryOperator::Addition && (is_string_code(&b.left) || is_string_code(&b.right))
        }
        _ => false,
    }
}

/// Whether `expression` reads an error's `.stack`.
fn mentions_stack(expression: &Expression) -> bool {
    match expression.get_inner_expression() {
        e if e
            .as_member_expression()
            .is_some_and(|m| m.static_property_name() == Some("stack")) =>
        {
            true
        }
        Expression::BinaryExpression(b) => mentions_stack(&b.left) || mentions_stack(&b.right),
        Expression::TemplateLiteral(t) => t.expressions.iter().any(mentions_stack),
        Expression::ObjectExpression(o) => o
            .properties
            .iter()
            .any(|p| matches!(p, ObjectPropertyKind::ObjectProperty(p) if mentions_stack(&p.value))),
        _ => false,
    }
}

fn binding_name(pattern: &BindingPattern) -> Option<String> {
    pattern.get_identifier_name().map(|n| n.to_string())
}

fn required_module(expression: &Expression) -> Option<String> {
    match expression.get_inner_expression() {
        Expression::CallExpression(call) if call.callee.is_specific_id("require") => call
            .arguments
            .first()
            .and_then(Argument::as_expression)
            .and_then(literal_string)
            .map(|m| m.trim_start_matches("node:").to_owned()),
        // `require('x').y` and `require('x')()` bind to the same module.
        Expression::CallExpression(call) => required_module(&call.callee),
        other => other.as_member_expression().and_then(|m| required_module(m.object())),
    }
}

impl<'a> Visit<'a> for Checker<'_> {
    fn visit_import_declaration(&mut self, it: &ImportDeclaration<'a>) {
        let module = it.source.value.trim_start_matches("node:").to_owned();
        for specifier in it.specifiers.iter().flatten() {
            self.modules.insert(specifier.local().name.to_string(), module.clone());
        }
        walk::walk_import_declaration(self, it);
    }

    fn visit_variable_declarator(&mut self, it: &VariableDeclarator<'a>) {
        if let (Some(name), Some(module)) = (binding_name(&it.id), it.init.as_ref().and_then(required_module)) {
            self.modules.insert(name, module);
        }
        self.names.push(binding_name(&it.id).unwrap_or_default());
        walk::walk_variable_declarator(self, it);
        self.names.pop();
    }

    fn visit_assignment_expression(&mut self, it: &AssignmentExpression<'a>) {
        let name = match &it.left {
            AssignmentTarget::AssignmentTargetIdentifier(id) => id.name.to_string(),
            target => target
                .as_member_expression()
                .and_then(|m| m.static_property_name().map(str::to_owned))
                .unwrap_or_default(),
        };
        self.names.push(name);
        walk::walk_assignment_expression(self, it);
        self.names.pop();
    }

    fn visit_object_property(&mut self, it: &ObjectProperty<'a>) {
        self.names
            .push(it.key.static_name().map(|n| n.to_string()).unwrap_or_default());
        walk::walk_object_property(self, it);
        self.names.pop();
    }

    fn visit_function(&mut self, it: &Function<'a>, flags: oxc_syntax::scope::ScopeFlags) {
        self.names
            .push(it.id.as_ref().map(|id| id.name.to_string()).unwrap_or_default());
        walk::walk_function(self, it, flags);
        self.names.pop();
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        self.call(it);
        walk::walk_call_expression(self, it);
    }

    fn visit_function_body(&mut self, it: &FunctionBody<'a>) {
        self.strict_function |= it.directives.iter().any(|d| d.directive == "use strict");
        walk::walk_function_body(self, it);
    }

    fn visit_new_expression(&mut self, it: &NewExpression<'a>) {
        match dotted(&it.callee).as_deref() {
            Some("Function") => {
                let dynamic = it
                    .arguments
                    .iter()
                    .filter_map(Argument::as_expression)
                    .any(|a| !is_literal(a));
                self.report(
                    "code.eval",
                    if dynamic { Severity::High } else { Severity::Medium },
                    it.span,
                    "new Function() compiles a string into code".into(),
                    "write the function itself; never build code from data",
                );
            }
            Some("Buffer") => self.report(
                "code.new-buffer",
                Severity::Medium,
                it.span,
                "new Buffer() is deprecated: with a number it returns uninitialised memory".into(),
                "Buffer.from(value) or Buffer.alloc(size)",
            ),
            _ => {}
        }
        walk::walk_new_expression(self, it);
    }
}

pub fn check<'a>(
    file: &str,
    text: &str,
    lines: &Lines,
    program: &'a Program<'a>,
    source_type: SourceType,
) -> super::FileRead {
    let mut checker = Checker::new(file, text, lines);
    checker.visit_program(program);
    if let Some(span) = checker
        .express_app
        .filter(|_| !checker.helmet && !checker.powered_by_off)
    {
        checker.report(
            "code.no-helmet",
            Severity::Low,
            span,
            "An Express app without helmet, and X-Powered-By left on".into(),
            "app.use(helmet()) (or put portcullis in front: its [headers] are helmet's)",
        );
    }
    let commonjs = !source_type.is_module() && !source_type.is_typescript();
    let strict = program.directives.iter().any(|d| d.directive == "use strict");
    let has_code = !program.body.is_empty();
    if commonjs && !strict && !checker.strict_function && has_code {
        checker.report(
            "code.no-use-strict",
            Severity::Info,
            program.span(),
            "A CommonJS file without 'use strict'".into(),
            "start the file with 'use strict'; (ES modules are strict already)",
        );
    }
    let mut taint = super::taint::Taint::new(file, text, lines, &checker.modules);
    taint.run(program);
    // Where the taint rule saw the request reach eval, its finding (with
    // the path) says all the pattern rule would.
    let traced: Vec<Option<u32>> = taint
        .findings
        .iter()
        .filter(|f| f.rule == "taint.code-injection")
        .map(|f| f.evidence.line)
        .collect();
    let mut findings: Vec<Finding> = checker
        .findings
        .into_iter()
        .filter(|f| !(f.rule == "code.eval" && traced.contains(&f.evidence.line)))
        .collect();
    findings.append(&mut taint.findings);
    findings.extend(super::redos::findings(
        file,
        text,
        lines,
        &super::redos::sites(text, program),
    ));
    super::FileRead {
        findings,
        defines: taint.defined(),
        calls: taint.calls,
    }
}

/// The taint rules' findings when other files' `calls` with request data
/// are followed into this file's functions.
pub fn follow<'a>(
    file: &str,
    text: &str,
    lines: &Lines,
    program: &'a Program<'a>,
    calls: Vec<super::taint::Call>,
) -> Vec<Finding> {
    let mut checker = Checker::new(file, text, lines);
    checker.visit_program(program);
    let mut taint = super::taint::Taint::new(file, text, lines, &checker.modules);
    taint.follow(program, calls);
    taint.findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(code: &str) -> Vec<&'static str> {
        let allocator = oxc_allocator::Allocator::default();
        let source_type = SourceType::cjs();
        let parsed = oxc_parser::Parser::new(&allocator, code, source_type).parse();
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let lines = Lines::new(code);
        check("app.js", code, &lines, &parsed.program, source_type)
            .findings
            .into_iter()
            .map(|f| f.rule)
            .filter(|r| *r != "code.no-use-strict")
            .collect()
    }

    #[test]
    fn template_engines_with_escaping_off_are_found() {
        assert_eq!(
            rules("const swig = require('swig');\nswig.setDefaults({ cache: false, autoescape: false });"),
            ["code.template-escaping-off"]
        );
        assert_eq!(
            rules("const nunjucks = require('nunjucks');\nnunjucks.configure('views', { autoescape: false });"),
            ["code.template-escaping-off"]
        );
        assert_eq!(
            rules("Handlebars.compile(source, { noEscape: true });"),
            ["code.template-escaping-off"]
        );
        assert!(rules("const swig = require('swig');\nswig.setDefaults({ autoescape: true });").is_empty());
        assert!(rules("settings.update({ autoescape: false });").is_empty());
    }

    #[test]
    fn code_from_strings_is_found() {
        assert_eq!(rules("eval(req.query.x)"), ["taint.code-injection"]);
        assert_eq!(rules("eval(input)"), ["code.eval"]);
        assert_eq!(rules("new Function('a', body)"), ["code.eval"]);
        assert_eq!(
            rules("setTimeout('tick()', 10); setTimeout(() => tick(), 10)"),
            ["code.string-timer"]
        );
    }

    #[test]
    fn randomness_hashes_and_ciphers() {
        assert_eq!(
            rules("const resetToken = Math.random().toString(36)"),
            ["code.weak-random"]
        );
        assert!(rules("const jitter = Math.random() * 100").is_empty());
        let crypto = "const crypto = require('crypto');";
        assert_eq!(
            rules(&format!("{crypto} crypto.createHash('md5').update(file)")),
            ["code.weak-hash"]
        );
        assert_eq!(
            rules(&format!(
                "{crypto} const hash = crypto.createHash('sha256').update(password)"
            )),
            ["code.password-hash"]
        );
        assert_eq!(
            rules(&format!("{crypto} crypto.createCipher('aes192', key)")),
            ["code.deprecated-cipher"]
        );
        assert_eq!(rules("new Buffer(10)"), ["code.new-buffer"]);
    }

    #[test]
    fn sessions_secrets_and_tokens() {
        let found = rules(
            "const session = require('express-session'); app.use(session({ secret: 'keyboard cat', resave: false }))",
        );
        assert_eq!(
            found,
            [
                "code.hardcoded-secret",
                "code.session-default-name",
                "code.session-cookie-flags"
            ]
        );
        assert!(rules("const session = require('express-session'); app.use(session({ secret: process.env.S, name: 'id', cookie: { secure: true, sameSite: 'lax' } }))").is_empty());
        assert_eq!(
            rules("const jwt = require('jsonwebtoken'); jwt.verify(t, process.env.K)"),
            ["code.jwt-algorithms"]
        );
        assert_eq!(
            rules("const jwt = require('jsonwebtoken'); jwt.sign(p, 'shhhhh')"),
            ["code.hardcoded-secret"]
        );
        assert_eq!(
            rules("app.use((err, req, res, next) => res.status(500).send(err.stack))"),
            ["code.stack-sent"]
        );
    }

    #[test]
    fn xml_parsers_that_expand_entities() {
        assert_eq!(
            rules("libxmljs.parseXmlString(data, { noent: true })"),
            ["code.xml-external-entities"]
        );
        assert!(rules("libxmljs.parseXmlString(data, { noblanks: true })").is_empty());
    }

    #[test]
    fn express_without_helmet_and_suppressions() {
        assert_eq!(
            rules("const express = require('express'); const app = express();"),
            ["code.no-helmet"]
        );
        assert!(rules("const express = require('express'); const helmet = require('helmet'); const app = express(); app.use(helmet());").is_empty());
        assert!(rules("// portcullis-ignore code.eval: a REPL, on purpose\neval(line)").is_empty());
        // Strict mode asked for inside the module's wrapper counts.
        let allocator = oxc_allocator::Allocator::default();
        let code = "function Dao(db) { \"use strict\"; this.db = db; }";
        let parsed = oxc_parser::Parser::new(&allocator, code, SourceType::cjs()).parse();
        assert!(
            check("dao.js", code, &Lines::new(code), &parsed.program, SourceType::cjs())
                .findings
                .is_empty()
        );
    }

    #[test]
    fn positions_are_lines_and_columns() {
        let text = "a\nbc\r\n\nd";
        let lines = Lines::new(text);
        assert_eq!(lines.position(0), (1, 1));
        assert_eq!(lines.position(3), (2, 2));
        assert_eq!(lines.position(7), (4, 1));
        let texts: Vec<&str> = (0..=5).map(|n| lines.line(text, n)).collect();
        assert_eq!(texts, ["", "a", "bc", "", "d", ""]);
    }
}
