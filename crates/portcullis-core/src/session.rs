//! Gateway sessions (checklist C7): who logged in through the portal.
//!
//! A session is a record in the [`Store`](crate::store::Store) (memory, or
//! Redis so several gateways share it) under the SHA-256 of its id; the id
//! itself, 32 random bytes, lives only in the browser's cookie, so reading
//! the store does not give anyone a session. The cookie is `HttpOnly`,
//! `SameSite=Lax`, and over HTTPS `__Host-` prefixed and `Secure`.
//!
//! A session ends when it has been idle for `idle_secs`, `lifetime_secs`
//! after it began whatever its use, or at logout, which deletes the record:
//! a copied cookie is worth nothing afterwards. A new id is issued at each
//! change of privilege (password checked, second factor checked).

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cookies::{request_cookie, request_cookie_pairs, rewrite_request_cookies, CookiePair};
use crate::store::{SharedState, StoreError};
use crate::InvalidConfig;

/// The `[session]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// The cookie's name (`__Host-` is put before it over HTTPS).
    pub cookie: String,
    pub idle_secs: u64,
    pub lifetime_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        // OWASP's session guidance: 15 to 30 minutes idle for most
        // applications, an absolute limit of a working day.
        Self {
            cookie: "portcullis-session".into(),
            idle_secs: 30 * 60,
            lifetime_secs: 12 * 60 * 60,
        }
    }
}

impl SessionConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::require_positive(&[("idle_secs", self.idle_secs), ("lifetime_secs", self.lifetime_secs)])?;
        let token = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
        if self.cookie.is_empty() || !self.cookie.bytes().all(token) || self.cookie.starts_with("__") {
            return Err(InvalidConfig::new(
                "cookie",
                "a cookie name of letters, digits, `-`, `_` and `.`, not starting with `__`",
            ));
        }
        Ok(())
    }
}

/// What the gateway knows of a logged-in (or logging-in) user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    pub groups: Vec<String>,
    /// Every factor the user has is checked. `false`: the password only,
    /// the second factor is next.
    pub complete: bool,
    pub created_ms: u64,
    pub seen_ms: u64,
}

/// A session id, as the cookie carries it (64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    fn random() -> Result<Self, StoreError> {
        Ok(Self(
            random_hex::<32>().map_err(|e| StoreError(format!("no randomness: {e}")))?,
        ))
    }

    /// The key of what the store keeps for this session under `scope`
    /// (`session`, or a portal step's): the SHA-256 of the id's 32 bytes (one
    /// block to hash, not the two its hex text would take), never the id.
    pub fn store_key(&self, scope: &str) -> String {
        let mut raw = [0u8; 32];
        for (byte, pair) in raw.iter_mut().zip(self.0.as_bytes().chunks_exact(2)) {
            *byte = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        format!("{scope}:{}", hex(&Sha256::digest(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id as a cookie carries it: 64 lowercase hex digits, or `None`.
    pub fn from_cookie(value: &str) -> Option<Self> {
        let shaped = value.len() == 64 && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        shaped.then(|| Self(value.to_owned()))
    }
}

/// `N` random bytes from the operating system, as hex.
pub fn random_hex<const N: usize>() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// A lowercase hex digit's value (ids are checked to be hex when presented).
fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => (digit | 0x20).wrapping_sub(b'a').wrapping_add(10) & 15,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    text
}

const SESSION_SCOPE: &str = "session";

/// How often a session in use is written back to extend its idle time: not
/// on every request.
const TOUCH_MS: u64 = 60_000;

/// The sessions of one gateway (or of several sharing a store).
#[derive(Clone)]
pub struct Sessions {
    config: SessionConfig,
    state: SharedState,
    /// The cookies' names over HTTP and HTTPS: (session, CSRF) each.
    names: std::sync::Arc<[(String, String); 2]>,
}

impl Sessions {
    pub fn new(config: SessionConfig, state: SharedState) -> Self {
        let named = |prefix: &str| {
            (
                format!("{prefix}{}", config.cookie),
                format!("{prefix}{}-csrf", config.cookie),
            )
        };
        let names = std::sync::Arc::new([named(""), named("__Host-")]);
        Self { config, state, names }
    }

    pub fn cookie_name(&self, https: bool) -> &str {
        &self.names[usize::from(https)].0
    }

    /// The portal's CSRF cookie, named after the session's.
    pub fn csrf_cookie_name(&self, https: bool) -> &str {
        &self.names[usize::from(https)].1
    }

    /// The id a request presents, if it has the shape of one.
    pub fn presented(&self, headers: &HeaderMap, https: bool) -> Option<SessionId> {
        let value = request_cookie(headers, self.cookie_name(https))?;
        SessionId::from_cookie(std::str::from_utf8(value).ok()?)
    }

    /// The session behind `id`, unless it has ended (then it is deleted).
    pub async fn load(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = self.state.now_ms();
        let key = id.store_key(SESSION_SCOPE);
        let Some(text) = self.state.store.get(&key, now).await? else {
            return Ok(None);
        };
        let Ok(mut session) = serde_json::from_str::<Session>(&text) else {
            self.state.store.delete(&key).await?;
            return Ok(None);
        };
        if self.ended(&session, now) {
            self.state.store.delete(&key).await?;
            return Ok(None);
        }
        if now.saturating_sub(session.seen_ms) >= TOUCH_MS {
            session.seen_ms = now;
            self.save(&key, &session, now).await?;
        }
        Ok(Some(session))
    }

    fn ended(&self, session: &Session, now: u64) -> bool {
        now.saturating_sub(session.seen_ms) >= self.config.idle_secs * 1000
            || now.saturating_sub(session.created_ms) >= self.config.lifetime_secs * 1000
    }

    /// Starts a session for `user` under a new id, ending `previous` (the
    /// id changes with every change of privilege).
    pub async fn begin(
        &self,
        user: &str,
        groups: &[String],
        complete: bool,
        previous: Option<&SessionId>,
    ) -> Result<SessionId, StoreError> {
        let now = self.state.now_ms();
        let mut created_ms = now;
        if let Some(previous) = previous {
            // The second factor continues the login the password began.
            if let Some(session) = self.load(previous).await? {
                created_ms = session.created_ms;
            }
            self.end(previous).await?;
        }
        let session = Session {
            user: user.to_owned(),
            groups: groups.to_vec(),
            complete,
            created_ms,
            seen_ms: now,
        };
        let id = SessionId::random()?;
        self.save(&id.store_key(SESSION_SCOPE), &session, now).await?;
        Ok(id)
    }

    async fn save(&self, key: &str, session: &Session, now: u64) -> Result<(), StoreError> {
        let lifetime_left = (session.created_ms + self.config.lifetime_secs * 1000).saturating_sub(now);
        let ttl = Duration::from_millis(lifetime_left.min(self.config.idle_secs * 1000).max(1));
        let text = serde_json::to_string(session).map_err(|e| StoreError(e.to_string()))?;
        self.state.store.put(key, text, now, ttl).await
    }

    pub async fn end(&self, id: &SessionId) -> Result<(), StoreError> {
        self.state.store.delete(&id.store_key(SESSION_SCOPE)).await
    }

    /// `Set-Cookie` for `id`: a browser-session cookie (no `Max-Age`), so it
    /// goes when the browser closes; the store decides when it ends anyway.
    pub fn set_cookie(&self, id: &SessionId, https: bool) -> HeaderValue {
        let secure = if https { "; Secure" } else { "" };
        let value = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name(https),
            id.0
        );
        // Hex and a validated name: always a valid header value.
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn clear_cookie(&self, https: bool) -> HeaderValue {
        let secure = if https { "; Secure" } else { "" };
        let value = format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name(https)
        );
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Removes the session cookie and the portal's CSRF cookie (either
    /// spelling) from the request, so the app never sees them and cannot leak them.
    pub fn strip_cookie(&self, headers: &mut HeaderMap) {
        let (session, csrf) = &self.names[0];
        let ours = |pair: &CookiePair| {
            let bare = pair.name.strip_prefix(b"__Host-").unwrap_or(pair.name);
            bare == session.as_bytes() || bare == csrf.as_bytes()
        };
        if request_cookie_pairs(headers).any(|pair| ours(&pair)) {
            rewrite_request_cookies(headers, |pair| (!ours(&pair)).then(|| pair.whole.to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ManualClock, MemoryStore, OnError};
    use http::header;
    use std::sync::Arc;

    fn sessions() -> (Sessions, ManualClock) {
        let clock = ManualClock::at(1_000_000);
        let state = SharedState {
            store: Arc::new(MemoryStore::new(100)),
            clock: Arc::new(clock.clone()),
            on_error: OnError::FailClosed,
        };
        (Sessions::new(SessionConfig::default(), state), clock)
    }

    #[tokio::test]
    async fn sessions_end_when_idle_at_their_lifetime_and_at_logout() {
        let (sessions, clock) = sessions();
        let id = sessions.begin("ada", &["admin".into()], true, None).await.unwrap();
        assert_eq!(sessions.load(&id).await.unwrap().unwrap().user, "ada");
        clock.advance(Duration::from_secs(29 * 60));
        assert!(sessions.load(&id).await.unwrap().is_some(), "use extends the idle time");
        clock.advance(Duration::from_secs(29 * 60));
        assert!(sessions.load(&id).await.unwrap().is_some());
        clock.advance(Duration::from_secs(30 * 60));
        assert!(sessions.load(&id).await.unwrap().is_none(), "idle for 30 minutes");

        let id = sessions.begin("ada", &[], true, None).await.unwrap();
        for _ in 0..25 {
            clock.advance(Duration::from_secs(29 * 60));
            let _ = sessions.load(&id).await.unwrap();
        }
        assert!(sessions.load(&id).await.unwrap().is_none(), "12 hours whatever the use");

        let id = sessions.begin("ada", &[], true, None).await.unwrap();
        sessions.end(&id).await.unwrap();
        assert!(sessions.load(&id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_new_id_at_each_step_and_the_old_one_is_dead() {
        let (sessions, _) = sessions();
        let first = sessions.begin("ada", &[], false, None).await.unwrap();
        let second = sessions.begin("ada", &[], true, Some(&first)).await.unwrap();
        assert_ne!(first, second);
        assert!(sessions.load(&first).await.unwrap().is_none());
        assert!(sessions.load(&second).await.unwrap().unwrap().complete);
    }

    #[test]
    fn cookies_are_read_by_their_exact_shape_and_stripped_for_the_app() {
        let (sessions, _) = sessions();
        let id = "ab".repeat(32);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!(
                "theme=dark; __Host-portcullis-session={id}; portcullis-session=x; portcullis-session-csrf=y"
            ))
            .unwrap(),
        );
        assert_eq!(sessions.presented(&headers, true).unwrap().as_str(), id);
        assert!(sessions.presented(&headers, false).is_none(), "not 64 hex digits");
        sessions.strip_cookie(&mut headers);
        assert_eq!(headers[header::COOKIE], "theme=dark");
        assert!(sessions
            .set_cookie(&SessionId(id), true)
            .to_str()
            .unwrap()
            .starts_with("__Host-portcullis-session="));
    }
}
