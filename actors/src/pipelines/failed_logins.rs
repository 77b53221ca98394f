//! `failed-logins`: bursts of failed logins per account. Input `logins`
//! (`{"account_id","ip","success","event_ms"}`, [`LoginAttempt`]), 10 s of allowed disorder.
//!
//! Each account's attempts are taken in event-time order (ties in input order), once the
//! watermark has passed them. At a failed attempt at time `t`, an alert is emitted when the
//! account has at least [`FAILURES`] failed attempts with event time in `[t − 5 min, t]` (those
//! taken so far) and no alert of that account has a time in `[t − 5 min, t)`:
//! `{"account_id","alert_ms","failures","ips"}` (`failures`: the failed attempts in that
//! interval, `ips`: how many distinct ips they came from). Successful attempts change nothing.

use crate::events::LoginAttempt;
use serde::{Deserialize, Serialize};
use spate::operator::{InOrder, KeyedContext, OrderedOperator};
use spate::prelude::*;
use spate::time::StateTtl;
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

/// Failed attempts within the window that raise an alert.
pub const FAILURES: usize = 3;
/// The window, and the quiet time after an alert.
pub const WINDOW: Millis = 5 * 60_000;

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginAlert {
    /// The account, as the input wrote it.
    pub account_id: Id,
    /// The failed attempt that raised it, epoch milliseconds.
    pub alert_ms: Millis,
    /// Failed attempts in the 5 minutes up to it.
    pub failures: u64,
    /// Distinct ips among them.
    pub ips: u64,
}

/// An account's recent failures and last alert.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Account {
    /// Failed attempts of the last 5 minutes, oldest first: time and ip.
    failures: VecDeque<(Millis, String)>,
    /// The time of the account's last alert.
    last_alert: Option<Millis>,
}

/// Alerts on bursts of failures, in event-time order.
pub struct FailedLogins;

impl OrderedOperator for FailedLogins {
    type Key = Id;
    type Event = LoginAttempt;
    type State = Account;
    type Output = LoginAlert;

    fn on_record(
        &self,
        attempt: &LoginAttempt,
        ctx: &mut KeyedContext<'_, Id, Account, LoginAlert>,
    ) {
        if attempt.success {
            return;
        }
        let t = attempt.event_ms;
        let account_id = ctx.key().clone();
        let account = ctx.state();
        account.failures.push_back((t, attempt.ip.clone()));
        while account
            .failures
            .front()
            .is_some_and(|(at, _)| *at < t - WINDOW)
        {
            account.failures.pop_front();
        }
        let quiet = account
            .last_alert
            .is_none_or(|a| !(t - WINDOW..t).contains(&a));
        if account.failures.len() < FAILURES || !quiet {
            return;
        }
        account.last_alert = Some(t);
        let ips: BTreeSet<&str> = account.failures.iter().map(|(_, ip)| ip.as_str()).collect();
        let alert = LoginAlert {
            account_id,
            alert_ms: t,
            failures: account.failures.len() as u64,
            ips: ips.len() as u64,
        };
        ctx.emit(alert);
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    Pipeline::<LoginAttempt>::new(
        "failed-logins",
        "an alert at each failed login that makes 3 or more failures of its account in 5 minutes, at most one per account per 5 minutes",
    )
    .input("logins")
    .event_time(|a| a.event_ms)
    .watermark_delay(Duration::from_secs(10))
    .key_by(|a| a.account_id.clone())
    .state_ttl(StateTtl::event_time(Duration::from_secs(15 * 60)))
    .process(InOrder(FailedLogins))
}
