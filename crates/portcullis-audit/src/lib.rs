//! The auditor: the production checklist verified from outside.
//!
//! Every check, whatever it inspects (a live site, a lockfile, source code),
//! reports [`report::Finding`]s; a [`report::Report`] gathers them and is
//! written as text, JSON or SARIF.

pub mod advisories;
pub mod code;
mod js;
pub mod project;
pub mod report;
pub mod url;
pub mod versions;
