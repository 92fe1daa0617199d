//! Repeat offenders (checklist C9): a client the rate limit keeps refusing is
//! banned for a while, and a banned client gets a 403 (or a closed
//! connection) before any other work is done for it.
//!
//! Refusals are counted in the shared [`Store`](crate::store::Store), so
//! refusals seen by every gateway add up. Each gateway keeps the bans it
//! knows of in memory and checks them without asking the store: it learns of
//! a ban when it imposes one, or when it refuses a banned client and the
//! store answers that the ban is already in force.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, StatusCode};
use serde::Deserialize;

use crate::body::Body;
use crate::client_ip::{group, DEFAULT_IPV6_PREFIX};
use crate::context::RequestContext;
use crate::events::Events;
use crate::pages::NeutralPages;
use crate::policy::{Policy, PolicyLayer, Verdict};
use crate::store::{Clock, MemoryStore, SharedState, StrikeRule};
use crate::InvalidConfig;

/// The `[bans]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BansConfig {
    pub enabled: bool,
    /// Rate-limit refusals within `window_secs` that earn a ban.
    pub refusals: u64,
    pub window_secs: u64,
    pub ban_secs: u64,
    /// What a banned client gets.
    pub action: BanAction,
}

impl Default for BansConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            refusals: 60,
            window_secs: 60,
            ban_secs: 900,
            action: BanAction::Forbid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BanAction {
    /// A neutral 403 page.
    Forbid,
    /// New connections from the address are closed at once, unanswered;
    /// clients behind a trusted proxy get a 403 and `Connection: close`.
    Close,
}

impl BansConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::require_positive(&[
            ("refusals", self.refusals),
            ("window_secs", self.window_secs),
            ("ban_secs", self.ban_secs),
        ])
    }

    fn rule(&self) -> StrikeRule {
        StrikeRule {
            limit: self.refusals,
            window: Duration::from_secs(self.window_secs),
            block: Duration::from_secs(self.ban_secs),
        }
    }
}

/// The bans one gateway knows of, shared by its event loops.
pub struct Bans {
    config: BansConfig,
    /// Shared with the `Bans` a config reload makes, so bans in force stay.
    known: Arc<MemoryStore>,
    pages: NeutralPages,
    events: Events,
}

/// Bans held in memory at most; beyond, expired and then arbitrary ones go.
const MAX_KNOWN_BANS: usize = 100_000;

impl Bans {
    pub fn new(config: BansConfig, pages: NeutralPages, events: Events) -> Result<Arc<Self>, InvalidConfig> {
        Self::with_known(config, pages, events, Arc::new(MemoryStore::new(MAX_KNOWN_BANS)))
    }

    /// The bans of a reloaded config: new settings, the same bans in force.
    pub fn reconfigured(&self, config: BansConfig, pages: NeutralPages) -> Result<Arc<Self>, InvalidConfig> {
        Self::with_known(config, pages, self.events.clone(), self.known.clone())
    }

    fn with_known(
        config: BansConfig,
        pages: NeutralPages,
        events: Events,
        known: Arc<MemoryStore>,
    ) -> Result<Arc<Self>, InvalidConfig> {
        config.validate()?;
        Ok(Arc::new(Self {
            config,
            known,
            pages,
            events,
        }))
    }

    fn key(ip: IpAddr) -> String {
        format!("ban:{}", group(ip, DEFAULT_IPV6_PREFIX))
    }

    /// The ban in force for `ip`, in ms (0: none).
    pub fn banned_ms(&self, ip: IpAddr, clock: &dyn Clock) -> u64 {
        // Usually no one is banned: then the clock is not read, and no key
        // is formatted or hashed.
        if !self.config.enabled || self.known.is_empty() {
            return 0;
        }
        self.known.blocked_now(&Self::key(ip), clock.now_ms())
    }

    /// Whether banned peers are cut off at accept time.
    pub fn closes_connections(&self) -> bool {
        self.config.enabled && self.config.action == BanAction::Close
    }

    /// Counts a rate-limit refusal of `context`'s client; bans it once it has
    /// had too many. A store that cannot answer bans no one.
    pub async fn refused(&self, state: &SharedState, context: &RequestContext) {
        if !self.config.enabled {
            return;
        }
        let key = Self::key(context.client_ip);
        let now = state.now_ms();
        let Ok(ban_ms) = state.store.strike(&key, now, self.config.rule()).await else {
            return;
        };
        if ban_ms == 0 || self.known.blocked_now(&key, now) > 0 {
            return;
        }
        let rule = StrikeRule {
            limit: 1,
            window: Duration::from_millis(ban_ms),
            block: Duration::from_millis(ban_ms),
        };
        self.known.strike_now(&key, now, rule);
        let mut event = context.event("bans", "repeat_offender", "banned");
        event.detail = Some(format!("banned for {} s", ban_ms.div_ceil(1000)));
        self.events.emit(event);
    }
}

/// The check at the front of the stack.
pub struct BanCheck {
    bans: Arc<Bans>,
    state: SharedState,
}

pub type BanCheckLayer = PolicyLayer<BanCheck>;

impl BanCheck {
    pub fn new(bans: Arc<Bans>, state: SharedState) -> Self {
        Self { bans, state }
    }
}

impl Policy for BanCheck {
    type State = ();

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<()> {
        let Some(context) = request.extensions().get::<RequestContext>() else {
            return Verdict::Answer(crate::context::missing("bans", &self.bans.pages, &self.bans.events));
        };
        if self.bans.banned_ms(context.client_ip, &*self.state.clock) == 0 {
            return Verdict::Forward(());
        }
        let mut page = self.bans.pages.render(StatusCode::FORBIDDEN, Some(context));
        if self.bans.config.action == BanAction::Close {
            page.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        Verdict::Answer(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing::context_from;
    use crate::events::testing::Recorder;
    use crate::store::{ManualClock, OnError};

    fn setup(clock: &ManualClock) -> (Arc<Bans>, SharedState, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let config = BansConfig {
            refusals: 3,
            ban_secs: 600,
            ..Default::default()
        };
        let bans = Bans::new(config, NeutralPages::default(), recorder.clone()).unwrap();
        let state = SharedState {
            store: Arc::new(MemoryStore::new(100)),
            clock: Arc::new(clock.clone()),
            on_error: OnError::FailOpen,
        };
        (bans, state, recorder)
    }

    #[tokio::test]
    async fn the_nth_refusal_bans_until_the_ban_ends() {
        let clock = ManualClock::at(1_000_000);
        let (bans, state, recorder) = setup(&clock);
        let client = context_from("192.0.2.7");
        for _ in 0..2 {
            bans.refused(&state, &client).await;
        }
        assert_eq!(bans.banned_ms(client.client_ip, &clock), 0);
        bans.refused(&state, &client).await;
        assert_eq!(bans.banned_ms(client.client_ip, &clock), 600_000);
        assert_eq!(bans.banned_ms("192.0.2.8".parse().unwrap(), &clock), 0);
        bans.refused(&state, &client).await;
        let events = recorder.taken();
        assert_eq!(events.len(), 1, "one event per ban: {events:?}");
        assert_eq!(events[0].action, "banned");
        clock.advance(Duration::from_secs(600));
        assert_eq!(bans.banned_ms(client.client_ip, &clock), 0, "the ban ended");
    }

    #[tokio::test]
    async fn a_ban_imposed_elsewhere_is_learnt_at_the_next_refusal() {
        let clock = ManualClock::at(0);
        let (bans, state, _) = setup(&clock);
        let (elsewhere, _, _) = setup(&clock);
        let client = context_from("2001:db8::1");
        for _ in 0..3 {
            elsewhere.refused(&state, &client).await;
        }
        assert_eq!(bans.banned_ms(client.client_ip, &clock), 0, "not known here yet");
        clock.advance(Duration::from_secs(100));
        bans.refused(&state, &client).await;
        assert_eq!(
            bans.banned_ms("2001:db8::ffff".parse().unwrap(), &clock),
            500_000,
            "the remaining ban, for the whole /56"
        );
    }
}
