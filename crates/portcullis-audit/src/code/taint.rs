//! The taint rules (C17, high severity): data from the request (`req.query`,
//! `req.body`, `req.params`, `req.cookies`, `req.headers`, `req.files`,
//! `req.get()`, `req.param()`) followed through variables, destructuring,
//! property access, concatenation, template literals and string methods,
//! within a function and its closures, and into the functions of the same
//! file it is passed to, until it reaches a sink: SQL, a shell, code, an
//! HTML answer, a file path, a redirect, `require`, a regular expression,
//! a NoSQL query built from the request itself or a `$where` built from
//! it, a deserializer, an outgoing request's URL.
//!
//! Across files, one step: a tainted argument to a function or method
//! defined in exactly one other file of the project (a route calling its
//! DAO) is followed into it there ([`Taint::follow`]).
//!
//! The model is flow-insensitive within a function (once tainted, a name
//! stays tainted), names are matched by name (shadowing is not modelled),
//! and `parseInt`, `Number`, `parseFloat` and functions named like
//! escapers or sanitizers clean what they return.

use std::collections::HashMap;

use oxc_ast::ast::*;
use oxc_ast_visit::{walk, Visit};
use oxc_span::{GetSpan, Span};

use super::rules::Lines;
use crate::report::{Evidence, Finding, Item, Severity};

/// How a value came to be tainted: each step's file, line and what it
/// says.
#[derive(Debug, Clone)]
pub struct Trace {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    file: String,
    line: u32,
    text: String,
}

impl Trace {
    /// `step` added, unless the last step is on the same line.
    fn then(mut self, step: Step) -> Self {
        if self
            .steps
            .last()
            .is_none_or(|last| (&last.file, last.line) != (&step.file, step.line))
        {
            self.steps.push(step);
        }
        self
    }
}

/// A tainted argument passed to a function this file does not define: the
/// function's name, the argument's index, and how it was tainted.
#[derive(Clone)]
pub struct Call {
    pub name: String,
    pub index: usize,
    pub trace: Trace,
}

/// What reaches each kind of sink, and what to do instead.
struct Sink {
    rule: &'static str,
    title: &'static str,
    fix: &'static str,
}

const SQL: Sink = Sink {
    rule: "taint.sql-injection",
    title: "SQL built from the request",
    fix: "pass values as parameters: db.query('... WHERE login = ?', [login]), sequelize.query(sql, { replacements }), knex's bindings",
};
const COMMAND: Sink = Sink {
    rule: "taint.command-injection",
    title: "A shell command built from the request",
    fix: "execFile('ping', ['-c', '2', address]) with a validated argument, never exec() of a built string",
};
const CODE: Sink = Sink {
    rule: "taint.code-injection",
    title: "Code built from the request is run",
    fix: "never evaluate request data: parse it (JSON.parse), or look it up in a fixed table",
};
const HTML: Sink = Sink {
    rule: "taint.xss",
    title: "Request data written into an HTML answer unescaped",
    fix: "render with a template engine that escapes (res.render), or escape it; send JSON with res.json",
};
const FILE: Sink = Sink {
    rule: "taint.path-traversal",
    title: "A file path built from the request",
    fix: "resolve it under a fixed directory and check it stays there (path.resolve(root, name).startsWith(root + path.sep)), or map names to files",
};
const REDIRECT: Sink = Sink {
    rule: "taint.open-redirect",
    title: "A redirect to a URL from the request",
    fix: "redirect only to paths of this site (start with a single /), or to an allowlist of hosts",
};
const REQUIRE: Sink = Sink {
    rule: "taint.require",
    title: "A module path from the request is loaded",
    fix: "require fixed names only; map request values to modules in a table",
};
const REGEX: Sink = Sink {
    rule: "taint.regex-injection",
    title: "A regular expression built from the request (ReDoS, and matching anything)",
    fix: "escape it (lodash's escapeRegExp) or match with includes()/startsWith()",
};
const NOSQL: Sink = Sink {
    rule: "taint.nosql-injection",
    title: "A NoSQL query made of the request's own object ({ $ne: null } and $where get in)",
    fix: "build the query from fields you cast: { login: String(req.body.login) }; reject objects where strings are expected",
};
const SSRF: Sink = Sink {
    rule: "taint.ssrf",
    title: "A request sent by the server to a URL from the request (SSRF)",
    fix: "fetch only fixed hosts: build the URL from an allowlisted base and a validated, encoded path",
};
const DESERIALIZE: Sink = Sink {
    rule: "taint.deserialization",
    title: "Request data deserialized with a deserializer that runs code",
    fix: "JSON.parse, then validate the shape",
};

/// Sources: the request's parts a client chooses.
const SOURCES: [&str; 6] = ["query", "body", "params", "cookies", "headers", "files"];

fn is_request(name: &str) -> bool {
    matches!(name, "req" | "request")
}

/// A function or method of the file, by name: its parameters and body.
struct Declared<'a> {
    params: Vec<String>,
    body: &'a FunctionBody<'a>,
}

pub struct Taint<'t, 'a> {
    file: &'t str,
    text: &'t str,
    lines: &'t Lines,
    /// One map per function being read, innermost last: tainted names.
    scopes: Vec<HashMap<String, Trace>>,
    /// The file's named functions, for following a tainted argument in.
    functions: HashMap<String, Declared<'a>>,
    /// Its methods (`this.name = (…) => {…}`, `exports.name = function`,
    /// `X.prototype.name = …`), for calls `object.name(…)`.
    methods: HashMap<String, Declared<'a>>,
    /// Tainted arguments to functions defined elsewhere.
    pub calls: Vec<Call>,
    /// (function, parameter index, trace) met at call sites.
    pending: Vec<(String, usize, Trace)>,
    modules: &'t HashMap<String, String>,
    pub findings: Vec<Finding>,
}

impl<'t, 'a> Taint<'t, 'a> {
    pub fn new(file: &'t str, text: &'t str, lines: &'t Lines, modules: &'t HashMap<String, String>) -> Self {
        Self {
            file,
            text,
            lines,
            scopes: vec![HashMap::new()],
            functions: HashMap::new(),
            methods: HashMap::new(),
            calls: Vec::new(),
            pending: Vec::new(),
            modules,
            findings: Vec::new(),
        }
    }

    /// Reads `program`, then each function a tainted argument was passed
    /// to, with that parameter tainted (a few rounds, for chains).
    pub fn run(&mut self, program: &'a Program<'a>) {
        self.collect(program);
        self.visit_program(program);
        self.follow_pending();
    }

    /// Follows tainted arguments other files pass to this file's functions
    /// and methods (`calls` of theirs) into them.
    pub fn follow(&mut self, program: &'a Program<'a>, calls: Vec<Call>) {
        self.collect(program);
        self.pending = calls.into_iter().map(|c| (c.name, c.index, c.trace)).collect();
        self.follow_pending();
    }

    /// The names of the functions and methods the file read defines.
    pub fn defined(&self) -> Vec<String> {
        self.functions.keys().chain(self.methods.keys()).cloned().collect()
    }

    fn follow_pending(&mut self) {
        let mut done: Vec<(String, usize)> = Vec::new();
        for _ in 0..4 {
            let pending = std::mem::take(&mut self.pending);
            if pending.is_empty() {
                break;
            }
            for (name, index, trace) in pending {
                if done.contains(&(name.clone(), index)) {
                    continue;
                }
                done.push((name.clone(), index));
                let Some((param, body)) = self
                    .functions
                    .get(&name)
                    .or_else(|| self.methods.get(&name))
                    .and_then(|f| f.params.get(index).map(|p| (p.clone(), f.body)))
                else {
                    continue;
                };
                let mut seeded = HashMap::new();
                seeded.insert(param, trace);
                self.scopes = vec![seeded];
                self.visit_function_body(body);
            }
        }
    }

    fn collect(&mut self, program: &'a Program<'a>) {
        gather(program, &mut self.functions, &mut self.methods);
    }

    fn step(&self, span: Span) -> Step {
        let (line, _) = self.lines.position(span.start);
        let text = self.lines.line(self.text, line).trim();
        Step {
            file: self.file.to_owned(),
            line,
            text: text.chars().take(160).collect(),
        }
    }

    fn lookup(&self, name: &str) -> Option<&Trace> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    /// The trace when `expression` carries request data.
    fn tainted(&self, expression: &Expression) -> Option<Trace> {
        let expression = expression.get_inner_expression();
        match expression {
            Expression::Identifier(id) => self.lookup(&id.name).cloned(),
            Expression::BinaryExpression(b) => self.tainted(&b.left).or_else(|| self.tainted(&b.right)),
            Expression::LogicalExpression(l) => self.tainted(&l.left).or_else(|| self.tainted(&l.right)),
            Expression::ConditionalExpression(c) => self.tainted(&c.consequent).or_else(|| self.tainted(&c.alternate)),
            Expression::TemplateLiteral(t) => t.expressions.iter().find_map(|e| self.tainted(e)),
            Expression::ArrayExpression(a) => a
                .elements
                .iter()
                .filter_map(ArrayExpressionElement::as_expression)
                .find_map(|e| self.tainted(e)),
            Expression::ObjectExpression(o) => o.properties.iter().find_map(|p| match p {
                ObjectPropertyKind::ObjectProperty(p) => self.tainted(&p.value),
                ObjectPropertyKind::SpreadProperty(s) => self.tainted(&s.argument),
            }),
            Expression::AssignmentExpression(a) => self.tainted(&a.right),
            Expression::AwaitExpression(a) => self.tainted(&a.argument),
            Expression::CallExpression(call) => self.tainted_call(call),
            other => {
                let member = other.as_member_expression()?;
                if self.is_source(other) {
                    return Some(Trace {
                        steps: vec![self.step(other.span())],
                    });
                }
                self.tainted(member.object())
            }
        }
    }

    /// `req.body`, `req.query.id`, and so on.
    fn is_source(&self, expression: &Expression) -> bool {
        let Some(member) = expression.get_inner_expression().as_member_expression() else {
            return false;
        };
        match member.object().get_inner_expression() {
            Expression::Identifier(id) => {
                is_request(&id.name) && member.static_property_name().is_some_and(|p| SOURCES.contains(&p))
            }
            deeper => self.is_source(deeper),
        }
    }

    fn tainted_call(&self, call: &CallExpression) -> Option<Trace> {
        let name = call.callee_name().unwrap_or_default();
        // `req.get('x')`, `req.param('x')`.
        if let Some(member) = call.callee.as_member_expression() {
            if matches!(member.object().get_inner_expression(), Expression::Identifier(id) if is_request(&id.name))
                && matches!(name, "get" | "param" | "header")
            {
                return Some(Trace {
                    steps: vec![self.step(call.span)],
                });
            }
        }
        let lower = name.to_ascii_lowercase();
        if matches!(name, "parseInt" | "parseFloat" | "Number" | "Boolean")
            || lower.contains("escape")
            || lower.contains("sanitiz")
            || lower.contains("encode")
        {
            return None;
        }
        // Methods of a tainted string or object return it, transformed.
        if let Some(member) = call.callee.as_member_expression() {
            if let Some(trace) = self.tainted(member.object()) {
                return Some(trace);
            }
        }
        // Functions of data (`String(x)`, `path.join(dir, x)`, `JSON.parse(x)`).
        call.arguments
            .iter()
            .filter_map(Argument::as_expression)
            .find_map(|a| self.tainted(a))
    }

    fn taint_names(&mut self, pattern: &BindingPattern, trace: &Trace, span: Span) {
        let step = self.step(span);
        let mut names = Vec::new();
        collect_names(pattern, &mut names);
        for name in names {
            let trace = trace.clone().then(step.clone());
            if let Some(scope) = self.scopes.last_mut() {
                scope.insert(name, trace);
            }
        }
    }

    fn report(&mut self, sink: &Sink, span: Span, trace: Trace) {
        let position = self.lines.position(span.start);
        let line = position.0;
        if self
            .findings
            .iter()
            .any(|f| f.rule == sink.rule && f.evidence.line == Some(line))
        {
            return;
        }
        let mut excerpt = vec![self.step(span).text];
        for step in &trace.steps {
            excerpt.push(format!("from {}:{}: {}", step.file, step.line, step.text));
        }
        let evidence = Evidence::in_file_at(self.file, position, excerpt.join("\n"));
        self.findings.push(Finding {
            rule: sink.rule,
            item: Item::C17,
            severity: Severity::High,
            title: sink.title.into(),
            evidence,
            fix: sink.fix.into(),
        });
    }

    /// The sink `call` is, if any, and the argument that must not be tainted.
    fn sink<'c>(&self, call: &'c CallExpression<'a>) -> Option<(&'static Sink, &'c Expression<'a>)> {
        let name = call.callee_name()?;
        let first = call.arguments.first().and_then(Argument::as_expression)?;
        let object = call
            .callee
            .as_member_expression()
            .map(|m| m.object().get_inner_expression());
        let object_name = object.and_then(|o| match o {
            Expression::Identifier(id) => Some(id.name.as_str()),
            other => other.as_member_expression().and_then(|m| m.static_property_name()),
        });
        let module = |root: &str| self.modules.get(root).map(String::as_str);
        let callee_root = match call.callee.get_inner_expression() {
            Expression::Identifier(id) => Some(id.name.as_str()),
            _ => object_name,
        };
        let from = |m: &str| callee_root.and_then(module) == Some(m) || object_name == Some(m);
        let is_response = object_name.is_some_and(|o| matches!(o, "res" | "response"))
            || matches!(object, Some(Expression::CallExpression(c)) if c.callee_name() == Some("status"));
        let sink: &'static Sink = match name {
            "query" | "raw" | "run" | "all" if !is_response => &SQL,
            "exec" | "execSync" if from("child_process") || callee_root == Some("exec") => &COMMAND,
            "exec" | "get" if object_name.is_some_and(|o| o == "db") => &SQL,
            "spawn" | "spawnSync" if from("child_process") && has_shell(call) => &COMMAND,
            "eval" | "evaluate" => &CODE,
            "runInContext" | "runInNewContext" | "runInThisContext" | "compileFunction" => &CODE,
            "setTimeout" | "setInterval" if is_string_built(first) => &CODE,
            "send" | "write" | "end" if is_response && is_string_built(first) => &HTML,
            "sendFile" | "download" if is_response => &FILE,
            "redirect" if is_response => &REDIRECT,
            "require" => &REQUIRE,
            "fetch" if callee_root == Some("fetch") => &SSRF,
            "get" | "post" | "put" | "request" | "head" | "delete"
                if [
                    "needle",
                    "axios",
                    "got",
                    "request",
                    "node-fetch",
                    "superagent",
                    "http",
                    "https",
                    "undici",
                ]
                .iter()
                .any(|m| from(m)) =>
            {
                &SSRF
            }
            "unserialize" | "deserialize" => &DESERIALIZE,
            _ if from("fs") || from("fs/promises") => &FILE,
            "find" | "findOne" | "findOneAndUpdate" | "updateOne" | "updateMany" | "deleteOne" | "deleteMany"
            | "count" | "countDocuments" | "remove"
                if self.is_source(first) =>
            {
                &NOSQL
            }
            _ => return None,
        };
        Some((sink, first))
    }
}

/// The file's top-level function declarations, and its methods anywhere:
/// `this.name = …`, `exports.name = …`, `module.exports.name = …`,
/// `X.prototype.name = …` assigned a function.
fn gather<'a>(
    program: &'a Program<'a>,
    functions: &mut HashMap<String, Declared<'a>>,
    methods: &mut HashMap<String, Declared<'a>>,
) {
    for statement in &program.body {
        if let Statement::FunctionDeclaration(f) = statement {
            if let (Some(id), Some(body)) = (&f.id, f.body.as_deref()) {
                functions.insert(id.name.to_string(), declared(&f.params, body));
            }
        }
    }
    methods_in(&program.body, methods);
}

fn declared<'a>(params: &FormalParameters<'a>, body: &'a FunctionBody<'a>) -> Declared<'a> {
    let params = params
        .items
        .iter()
        .map(|p| {
            p.pattern
                .get_identifier_name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        })
        .collect();
    Declared { params, body }
}

/// The body of a function expression (`function () {…}`, `() => {…}`),
/// with its parameters; not a concise arrow's (nothing to follow a
/// parameter through).
fn function_of<'a>(expression: &'a Expression<'a>) -> Option<(&'a FormalParameters<'a>, &'a FunctionBody<'a>)> {
    match expression.get_inner_expression() {
        Expression::ArrowFunctionExpression(arrow) => match &arrow.body {
            ArrowFunctionBody::FunctionBody(body) => Some((&arrow.params, body)),
            _ => None,
        },
        Expression::FunctionExpression(f) => f.body.as_deref().map(|body| (&*f.params, body)),
        _ => None,
    }
}

/// Methods where modules define them: assigned to `this`, `exports`,
/// `module.exports` or a prototype, or properties of an object assigned to
/// `module.exports`, in the file's statements and in the bodies of the
/// functions that hold them (a constructor function, `module.exports =
/// function (app) {…}`).
fn methods_in<'a>(statements: &'a [Statement<'a>], methods: &mut HashMap<String, Declared<'a>>) {
    for statement in statements {
        match statement {
            Statement::FunctionDeclaration(f) => {
                if let Some(body) = f.body.as_deref() {
                    methods_in(&body.statements, methods);
                }
            }
            Statement::VariableDeclaration(declaration) => {
                for init in declaration.declarations.iter().filter_map(|d| d.init.as_ref()) {
                    if let Some((_, body)) = function_of(init) {
                        methods_in(&body.statements, methods);
                    }
                }
            }
            Statement::ExpressionStatement(statement) => {
                if let Expression::AssignmentExpression(assignment) = &statement.expression {
                    method_assigned(assignment, methods);
                }
            }
            _ => {}
        }
    }
}

fn method_assigned<'a>(assignment: &'a AssignmentExpression<'a>, methods: &mut HashMap<String, Declared<'a>>) {
    let Some(member) = assignment.left.as_member_expression() else {
        return;
    };
    let owner = match member.object().get_inner_expression() {
        Expression::ThisExpression(_) => true,
        Expression::Identifier(id) => matches!(id.name.as_str(), "exports" | "module"),
        other => other
            .as_member_expression()
            .and_then(|m| m.static_property_name())
            .is_some_and(|p| matches!(p, "exports" | "prototype")),
    };
    let function = function_of(&assignment.right);
    if let (true, Some(name), Some((params, body))) = (owner, member.static_property_name(), function) {
        methods.insert(name.to_owned(), declared(params, body));
    }
    if let Some((_, body)) = function {
        methods_in(&body.statements, methods);
    }
    if let Expression::ObjectExpression(object) = assignment.right.get_inner_expression() {
        for property in &object.properties {
            if let ObjectPropertyKind::ObjectProperty(p) = property {
                if let (Some(name), Some((params, body))) = (p.key.static_name(), function_of(&p.value)) {
                    methods.insert(name.to_string(), declared(params, body));
                }
            }
        }
    }
}

/// A shell is asked for: `spawn(cmd, args, { shell: true })`.
fn has_shell(call: &CallExpression) -> bool {
    call.arguments.iter().filter_map(Argument::as_expression).any(|a| match a.get_inner_expression() {
        Expression::ObjectExpression(o) => o.properties.iter().any(|p| matches!(p, ObjectPropertyKind::ObjectProperty(p) if p.key.static_name().is_some_and(|k| k == "shell") && !matches!(p.value, Expression::BooleanLiteral(ref b) if !b.value))),
        _ => false,
    })
}

/// A string made here: concatenated, templated, or a variable holding one.
fn is_string_built(expression: &Expression) -> bool {
    !matches!(
        expression.get_inner_expression(),
        Expression::ObjectExpression(_) | Expression::ArrayExpression(_) | Expression::NumericLiteral(_)
    )
}

fn collect_names(pattern: &BindingPattern, names: &mut Vec<String>) {
    match pattern {
        BindingPattern::BindingIdentifier(id) => names.push(id.name.to_string()),
        BindingPattern::ObjectPattern(o) => {
            for p in &o.properties {
                collect_names(&p.value, names);
            }
            if let Some(rest) = &o.rest {
                collect_names(&rest.argument, names);
            }
        }
        BindingPattern::ArrayPattern(a) => {
            for p in a.elements.iter().flatten() {
                collect_names(p, names);
            }
        }
        BindingPattern::AssignmentPattern(a) => collect_names(&a.left, names),
    }
}

impl<'a> Visit<'a> for Taint<'_, 'a> {
    fn visit_variable_declarator(&mut self, it: &VariableDeclarator<'a>) {
        walk::walk_variable_declarator(self, it);
        if let Some(trace) = it.init.as_ref().and_then(|init| self.tainted(init)) {
            self.taint_names(&it.id, &trace, it.span);
        }
    }

    fn visit_assignment_expression(&mut self, it: &AssignmentExpression<'a>) {
        walk::walk_assignment_expression(self, it);
        if let (AssignmentTarget::AssignmentTargetIdentifier(id), Some(trace)) = (&it.left, self.tainted(&it.right)) {
            let trace = trace.then(self.step(it.span));
            let name = id.name.to_string();
            if let Some(scope) = self.scopes.last_mut() {
                scope.insert(name, trace);
            }
        }
    }

    fn visit_function_body(&mut self, it: &FunctionBody<'a>) {
        self.scopes.push(HashMap::new());
        walk::walk_function_body(self, it);
        self.scopes.pop();
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        walk::walk_call_expression(self, it);
        if let Some((sink, argument)) = self.sink(it) {
            if let Some(trace) = self.tainted(argument) {
                self.report(sink, it.span, trace);
            }
        }
        // A tainted argument to a function of this file: follow it in; to
        // one defined elsewhere: say so, for the project to follow.
        let (name, here) = match it.callee.get_inner_expression() {
            Expression::Identifier(callee) => (
                Some(callee.name.as_str()),
                self.functions.contains_key(callee.name.as_str()),
            ),
            other => {
                let name = other.as_member_expression().and_then(|m| m.static_property_name());
                (name, name.is_some_and(|n| self.methods.contains_key(n)))
            }
        };
        let Some(name) = name else { return };
        for (index, argument) in it.arguments.iter().enumerate() {
            if let Some(trace) = argument.as_expression().and_then(|a| self.tainted(a)) {
                let trace = trace.then(self.step(it.span));
                if here {
                    self.pending.push((name.to_owned(), index, trace));
                } else {
                    self.calls.push(Call {
                        name: name.to_owned(),
                        index,
                        trace,
                    });
                }
            }
        }
    }

    fn visit_object_property(&mut self, it: &ObjectProperty<'a>) {
        walk::walk_object_property(self, it);
        // `{ $where: "this.x == '" + input + "'" }`: JavaScript run by the
        // database, whatever query it goes to.
        if it.key.static_name().is_some_and(|k| k == "$where") {
            if let Some(trace) = self.tainted(&it.value) {
                self.report(&NOSQL, it.span, trace);
            }
        }
    }

    fn visit_new_expression(&mut self, it: &NewExpression<'a>) {
        walk::walk_new_expression(self, it);
        let callee = match it.callee.get_inner_expression() {
            Expression::Identifier(id) => id.name.as_str(),
            _ => "",
        };
        let sink: Option<&'static Sink> = match callee {
            "RegExp" => Some(&REGEX),
            "Function" => Some(&CODE),
            _ => None,
        };
        if let Some(sink) = sink {
            if let Some(trace) = it
                .arguments
                .iter()
                .filter_map(Argument::as_expression)
                .find_map(|a| self.tainted(a))
            {
                self.report(sink, it.span, trace);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(code: &str) -> Vec<(&'static str, u32)> {
        let allocator = oxc_allocator::Allocator::default();
        let parsed = oxc_parser::Parser::new(&allocator, code, oxc_span::SourceType::cjs()).parse();
        let lines = Lines::new(code);
        let mut modules = HashMap::new();
        modules.insert("exec".into(), "child_process".into());
        modules.insert("fs".into(), "fs".into());
        let mut taint = Taint::new("app.js", code, &lines, &modules);
        taint.run(&parsed.program);
        taint
            .findings
            .iter()
            .map(|f| (f.rule, f.evidence.line.unwrap_or(0)))
            .collect()
    }

    #[test]
    fn dvnas_flaws_are_followed_to_their_sinks() {
        let sql = "function search(req, res) {\n  var query = \"SELECT name FROM Users WHERE login='\" + req.body.login + \"'\";\n  db.sequelize.query(query, { model: db.User });\n}";
        assert_eq!(taint(sql), [("taint.sql-injection", 3)]);
        let ping = "function ping(req, res) {\n  exec('ping -c 2 ' + req.body.address, function (err, out) {})\n}";
        assert_eq!(taint(ping), [("taint.command-injection", 2)]);
    }

    #[test]
    fn taint_flows_through_destructuring_templates_and_same_file_calls() {
        let code = "function read(name) {\n  return fs.readFileSync('/srv/' + name);\n}\nfunction handler(req, res) {\n  const { file } = req.query;\n  const where = `${file}.txt`;\n  read(where);\n  res.redirect(req.query.next);\n}";
        assert_eq!(taint(code), [("taint.open-redirect", 8), ("taint.path-traversal", 2)]);
    }

    #[test]
    fn outgoing_requests_to_request_urls_are_ssrf() {
        let code = "const needle = require('needle');\nfunction r(req, res) {\n  needle.get(config.api + req.query.symbol, cb);\n  fetch(req.body.url);\n}";
        let allocator = oxc_allocator::Allocator::default();
        let parsed = oxc_parser::Parser::new(&allocator, code, oxc_span::SourceType::cjs()).parse();
        let lines = Lines::new(code);
        let mut modules = HashMap::new();
        modules.insert("needle".into(), "needle".into());
        let mut taint = Taint::new("r.js", code, &lines, &modules);
        taint.run(&parsed.program);
        let found: Vec<(&str, u32)> = taint
            .findings
            .iter()
            .map(|f| (f.rule, f.evidence.line.unwrap_or(0)))
            .collect();
        assert_eq!(found, [("taint.ssrf", 3), ("taint.ssrf", 4)]);
    }

    #[test]
    fn a_where_built_from_the_request_is_nosql_injection() {
        let code = "function list(req, res) {\n  const t = req.query.threshold;\n  const q = { $where: `this.stocks > '${t}'` };\n  const safe = { $where: 'this.stocks > 0', x: t };\n}";
        assert_eq!(taint(code), [("taint.nosql-injection", 3)]);
    }

    #[test]
    fn calls_to_methods_defined_elsewhere_are_handed_on_and_followed_there() {
        let route = "function R(dao) {\n  this.show = (req, res) => {\n    const { t } = req.query;\n    dao.byThreshold(1, t, cb);\n    dao.byThreshold(parseInt(t), 2, cb);\n  };\n}";
        let allocator = oxc_allocator::Allocator::default();
        let parsed = oxc_parser::Parser::new(&allocator, route, oxc_span::SourceType::cjs()).parse();
        let lines = Lines::new(route);
        let modules = HashMap::new();
        let mut taint = Taint::new("route.js", route, &lines, &modules);
        taint.run(&parsed.program);
        let calls: Vec<(String, usize)> = taint
            .calls
            .iter()
            .filter(|c| c.name != "parseInt")
            .map(|c| (c.name.clone(), c.index))
            .collect();
        assert_eq!(calls, [("byThreshold".to_owned(), 1)]);
        let dao = "const DAO = function (db) {\n  this.byThreshold = (id, threshold, cb) => {\n    db.c.find({ $where: `this.x > '${threshold}'` }, cb);\n  };\n};\nmodule.exports = { DAO };";
        let parsed_dao = oxc_parser::Parser::new(&allocator, dao, oxc_span::SourceType::cjs()).parse();
        let dao_lines = Lines::new(dao);
        let mut followed = Taint::new("dao.js", dao, &dao_lines, &modules);
        followed.follow(&parsed_dao.program, std::mem::take(&mut taint.calls));
        assert_eq!(followed.defined(), ["byThreshold"]);
        assert_eq!(followed.findings.len(), 1);
        let excerpt = &followed.findings[0].evidence.excerpt;
        assert!(
            excerpt.contains("from route.js:4: dao.byThreshold(1, t, cb);"),
            "{excerpt}"
        );
    }

    #[test]
    fn parameters_and_casts_stay_clean() {
        let code = "function h(req, res) {\n  const id = parseInt(req.params.id, 10);\n  db.query('SELECT * FROM t WHERE id = ?', [req.params.id]);\n  db.query('SELECT * FROM t WHERE id = ' + id);\n  res.json({ q: req.query.q });\n}";
        assert!(taint(code).is_empty(), "{:?}", taint(code));
    }
}
