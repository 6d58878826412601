//! Webhooks (issue 17 item 5): a durable outbox of deliveries in the queue backend
//! and the delivery loop every node runs.
//!
//! One place enqueues: [`crate::Queue`] calls `Webhooks::events_for` after each
//! task state change it stores (completed / failed / timeout) and after creating a
//! task in `pending_approval` (`approval_needed`). Each matching hook gets one
//! [`Delivery`] document (SQLite table `webhook_deliveries`, Redis keys under the
//! `{hooks}` hash tag), written with a version compare-and-set like schedules.
//!
//! Delivery: a node claims a due delivery by compare-and-set of its version with a
//! lease (`lease_until`), so two nodes never send it at the same time; a node killed
//! mid-delivery leaves the lease to expire and another node sends it again with the
//! same delivery id (at-least-once; receivers dedupe by `X-Nessus-Delivery`). A 2xx
//! marks it `delivered` (never sent again); anything else retries with exponential
//! backoff (capped) until `max_attempts`, then `failed`. Secrets live in the config
//! only (looked up by hook id at send time): never in the outbox, logs or responses.
#![allow(missing_docs)] // field names are the wire names, documented on the module.
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Queue, Result, Task, TaskStatus};

/// An event a webhook subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    TaskCompleted,
    TaskFailed,
    TaskTimeout,
    ApprovalNeeded,
}

impl HookEvent {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TaskCompleted => "task_completed",
            Self::TaskFailed => "task_failed",
            Self::TaskTimeout => "task_timeout",
            Self::ApprovalNeeded => "approval_needed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::TaskCompleted,
            Self::TaskFailed,
            Self::TaskTimeout,
            Self::ApprovalNeeded,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }

    /// The event a task entering `status` raises, if any.
    pub fn for_status(status: TaskStatus) -> Option<Self> {
        match status {
            TaskStatus::Completed => Some(Self::TaskCompleted),
            TaskStatus::Failed => Some(Self::TaskFailed),
            TaskStatus::Timeout => Some(Self::TaskTimeout),
            TaskStatus::PendingApproval => Some(Self::ApprovalNeeded),
            _ => None,
        }
    }
}

/// One configured webhook.
#[derive(Clone)]
pub struct Webhook {
    /// Stable id (a digest of the url, events and filters), stored in deliveries.
    pub id: String,
    pub url: String,
    pub secret: SecretString,
    pub events: Vec<HookEvent>,
    /// Only tasks of this pool (none: every pool).
    pub pool: Option<String>,
    /// Only tasks of this principal (none: every principal).
    pub principal: Option<String>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("pool", &self.pool)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A webhook; the url must be https, or http to a loopback host.
    pub fn new(
        url: &str,
        secret: SecretString,
        events: Vec<HookEvent>,
        pool: Option<String>,
        principal: Option<String>,
    ) -> Result<Self> {
        check_url(url)?;
        if events.is_empty() {
            return Err(Error::invalid("webhooks.events", "at least one event"));
        }
        let mut h = Sha256::new();
        for part in [
            url,
            &events
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(","),
            pool.as_deref().unwrap_or(""),
            principal.as_deref().unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        Ok(Self {
            id: hex::encode(&h.finalize()[..8]),
            url: url.to_owned(),
            secret,
            events,
            pool,
            principal,
        })
    }

    fn matches(&self, event: HookEvent, t: &Task) -> bool {
        self.events.contains(&event)
            && self.pool.as_ref().is_none_or(|p| *p == t.pool)
            && self.principal.as_ref().is_none_or(|p| *p == t.principal)
    }
}

/// https anywhere, http only to a loopback host.
pub fn check_url(url: &str) -> Result<()> {
    let u = url::Url::parse(url).map_err(|e| Error::invalid("webhooks.url", e.to_string()))?;
    let loopback = match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match u.scheme() {
        "https" if u.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Error::invalid(
            "webhooks.url",
            "must be https, or http to a loopback host",
        )),
    }
}

/// Delivery tuning.
#[derive(Debug, Clone)]
pub struct HookSettings {
    /// How long a claim keeps other nodes off a delivery.
    pub lease: SignedDuration,
    /// First retry delay; doubled per attempt up to `max_backoff`.
    pub base_backoff: SignedDuration,
    pub max_backoff: SignedDuration,
    /// Attempts before `failed`.
    pub max_attempts: u32,
    /// Per-request timeout (kept under `lease`).
    pub timeout: Duration,
    /// Idle poll of the loop.
    pub poll: Duration,
}

impl Default for HookSettings {
    fn default() -> Self {
        Self {
            lease: SignedDuration::from_secs(60),
            base_backoff: SignedDuration::from_secs(5),
            max_backoff: SignedDuration::from_secs(3600),
            max_attempts: 10,
            timeout: Duration::from_secs(20),
            poll: Duration::from_secs(2),
        }
    }
}

/// The configured webhooks and their delivery settings.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    pub hooks: Vec<Webhook>,
    pub settings: HookSettings,
}

impl Webhooks {
    pub fn new(hooks: Vec<Webhook>) -> Self {
        Self {
            hooks,
            settings: HookSettings::default(),
        }
    }

    /// The config's `webhooks:` section.
    pub fn from_config(config: &nessus_core::Config) -> Result<Self> {
        let mut hooks = Vec::new();
        for w in config.webhooks() {
            let events = w
                .events
                .iter()
                .map(|e| {
                    HookEvent::parse(e).ok_or_else(|| {
                        Error::invalid("webhooks.events", format!("unknown event {e:?}"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            hooks.push(Webhook::new(
                &w.url,
                w.secret.secret().clone(),
                events,
                w.pool.clone(),
                w.principal.clone(),
            )?);
        }
        Ok(Self::new(hooks))
    }

    /// The deliveries a task that just entered its status raises.
    pub(crate) fn events_for(&self, t: &Task, now: Timestamp) -> Vec<Delivery> {
        let Some(event) = HookEvent::for_status(t.status) else {
            return Vec::new();
        };
        self.hooks
            .iter()
            .filter(|h| h.matches(event, t))
            .map(|h| Delivery {
                id: uuid::Uuid::now_v7().to_string(),
                hook: h.id.clone(),
                url: h.url.clone(),
                event,
                task_id: t.task_id.clone(),
                pool: t.pool.clone(),
                principal: t.principal.clone(),
                status: t.status.as_str().to_owned(),
                at: now,
                state: DeliveryState::Pending,
                attempts: 0,
                next_at: now,
                lease_until: None,
                last_status: None,
                last_error: None,
                delivered_at: None,
                version: 1,
            })
            .collect()
    }
}

/// A delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

/// One outbox entry: one event for one hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Sent as `X-Nessus-Delivery` and the body's `id`: the same on every attempt.
    pub id: String,
    pub hook: String,
    pub url: String,
    pub event: HookEvent,
    pub task_id: String,
    pub pool: String,
    pub principal: String,
    pub status: String,
    pub at: Timestamp,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_at: Timestamp,
    pub lease_until: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    pub version: u64,
}

impl Delivery {
    /// When a loop should look at it next (none: done).
    pub(crate) fn due(&self) -> Option<Timestamp> {
        (self.state == DeliveryState::Pending).then(|| match self.lease_until {
            Some(l) if l > self.next_at => l,
            _ => self.next_at,
        })
    }

    /// Ordering key for listings.
    pub(crate) fn order(&self) -> String {
        format!("{:013}:{}", self.at.as_millisecond().max(0), self.id)
    }

    /// The JSON body (the same bytes on every attempt).
    pub fn body(&self) -> String {
        serde_json::json!({
            "id": self.id,
            "event": self.event.as_str(),
            "task_id": self.task_id,
            "pool": self.pool,
            "principal": self.principal,
            "status": self.status,
            "at": self.at.to_string(),
        })
        .to_string()
    }
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`, lowercase hex.
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    const B: usize = 64;
    let mut k = [0u8; B];
    if key.len() > B {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    hex::encode(outer.finalize())
}

/// The `X-Nessus-Signature` value: `sha256=<hex HMAC over "{timestamp}.{body}">`.
pub fn signature(secret: &[u8], timestamp: &str, body: &str) -> String {
    let msg = format!("{timestamp}.{body}");
    format!("sha256={}", hmac_sha256_hex(secret, msg.as_bytes()))
}

impl Queue {
    /// Writes the outbox entries for a task that just entered its status (the one
    /// place events are raised; see the module docs).
    pub(crate) async fn raise_events(&self, t: &Task) -> Result<()> {
        let Some(hooks) = self.webhooks() else {
            return Ok(());
        };
        for d in hooks.events_for(t, Timestamp::now()) {
            self.backend().store_delivery(None, d).await?;
        }
        Ok(())
    }

    /// Deliveries, newest first.
    pub async fn list_deliveries(&self, limit: usize) -> Result<Vec<Delivery>> {
        self.backend().list_deliveries(limit).await
    }

    /// One pass: claims and sends every due delivery. Returns how many were sent
    /// (whatever the answer).
    pub async fn deliver_due(&self, client: &reqwest::Client) -> Result<usize> {
        let Some(hooks) = self.webhooks() else {
            return Ok(0);
        };
        let now = Timestamp::now();
        let ids = self.backend().due_deliveries(now, 32).await?;
        let mut sent = 0;
        for id in ids {
            let Some(d) = self.claim_delivery(&id, &hooks.settings).await? else {
                continue;
            };
            sent += 1;
            self.send(client, hooks, d).await?;
        }
        Ok(sent)
    }

    async fn claim_delivery(&self, id: &str, s: &HookSettings) -> Result<Option<Delivery>> {
        let now = Timestamp::now();
        let Some(prev) = self.backend().load_delivery(id.to_owned()).await? else {
            return Ok(None);
        };
        if prev.due().is_none_or(|d| d > now) {
            return Ok(None);
        }
        let mut next = prev.clone();
        next.lease_until = Some(now + s.lease);
        next.attempts += 1;
        next.version = prev.version + 1;
        Ok(self
            .backend()
            .store_delivery(Some(prev.version), next.clone())
            .await?
            .then_some(next))
    }

    async fn send(&self, client: &reqwest::Client, hooks: &Webhooks, d: Delivery) -> Result<()> {
        let s = &hooks.settings;
        let outcome = match hooks.hooks.iter().find(|h| h.id == d.hook) {
            None => Err((None, "webhook no longer configured".to_owned())),
            Some(h) => {
                let body = d.body();
                let ts = Timestamp::now().as_second().to_string();
                let sig = signature(h.secret.expose_secret().as_bytes(), &ts, &body);
                let r = client
                    .post(&h.url)
                    .timeout(s.timeout)
                    .header("content-type", "application/json")
                    .header("x-nessus-signature", sig)
                    .header("x-nessus-timestamp", &ts)
                    .header("x-nessus-delivery", &d.id)
                    .header("x-nessus-event", d.event.as_str())
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
                    Ok(r) => Err((Some(r.status().as_u16()), format!("HTTP {}", r.status()))),
                    // The error text names the url, never the secret.
                    Err(e) => Err((None, e.without_url().to_string())),
                }
            }
        };
        let now = Timestamp::now();
        let mut next = d.clone();
        next.version = d.version + 1;
        next.lease_until = None;
        match outcome {
            Ok(code) => {
                next.state = DeliveryState::Delivered;
                next.last_status = Some(code);
                next.last_error = None;
                next.delivered_at = Some(now);
            }
            Err((code, msg)) => {
                tracing::warn!(delivery = %d.id, hook = %d.hook, attempts = d.attempts, error = %msg, "webhook delivery failed");
                next.last_status = code;
                next.last_error = Some(msg);
                if d.attempts >= s.max_attempts {
                    next.state = DeliveryState::Failed;
                } else {
                    let exp = 2i64.saturating_pow(d.attempts.saturating_sub(1).min(30));
                    let delay = s
                        .base_backoff
                        .checked_mul(exp.try_into().unwrap_or(i32::MAX))
                        .unwrap_or(s.max_backoff)
                        .min(s.max_backoff);
                    next.next_at = now + delay;
                }
            }
        }
        // A lost race means our lease ran out and another node took it over: its
        // attempt decides (at-least-once).
        self.backend()
            .store_delivery(Some(d.version), next)
            .await
            .map(|_| ())
    }

    /// The delivery loop (every API node and worker): runs until `shutdown` fires.
    pub async fn run_deliveries(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(hooks) = self.webhooks() else {
            return;
        };
        let mut shutdown = shutdown;
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook client");
                return;
            }
        };
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.deliver_due(&client).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "webhook delivery pass"),
            }
            tokio::select! {
                _ = tokio::time::sleep(hooks.settings.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Shared handle type for the queue.
pub(crate) type SharedHooks = Option<Arc<Webhooks>>;
