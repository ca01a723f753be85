//! Brute-force limits, one mechanism for every surface: per client address
//! for Login and Register (in memory: an address is one instance's
//! business), and per username for failed logins, per account for wrong
//! second-factor codes and per account and email address for verification
//! and password reset mails (in the database, so that attempts spread over several instances
//! share one budget).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use super::error::AuthError;
use super::ports::{AccountFacts, RateLimitStore};

/// `capacity` events at once, the budget refilling evenly over `period`:
/// written `CAPACITY/PERIOD`, e.g. `60/1m`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub capacity: NonZeroU32,
    pub period: Duration,
}

impl Rate {
    /// Time for one event's worth of budget to come back.
    fn interval(self) -> Duration {
        self.period / self.capacity.get()
    }

    fn quota(self) -> Quota {
        Quota::with_period(self.interval())
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(self.capacity)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (capacity, period) = text.split_once('/').ok_or_else(|| {
            format!("expected CAPACITY/PERIOD such as 60/1m, or off; got {text:?}")
        })?;
        let capacity: NonZeroU32 = capacity
            .trim()
            .parse()
            .map_err(|_| format!("capacity must be a positive whole number, got {capacity:?}"))?;
        let period = humantime::parse_duration(period.trim()).map_err(|error| error.to_string())?;
        if period.is_zero() {
            return Err("the period must be longer than zero".into());
        }
        Ok(Self { capacity, period })
    }
}

/// The configured limits; `None` turns one off.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitSettings {
    pub login_per_address: Option<Rate>,
    pub register_per_address: Option<Rate>,
    pub login_failures_per_username: Option<Rate>,
    /// Wrong TOTP and recovery codes together, per account.
    pub second_factor_failures_per_account: Option<Rate>,
    /// Verification mails (SetEmail, ResendEmailVerification) per account.
    pub verification_mails_per_account: Option<Rate>,
    /// Verification mails per email address (those of Register too), so
    /// that nobody's inbox can be flooded from many accounts.
    pub verification_mails_per_address: Option<Rate>,
    /// Password reset mails per account.
    pub reset_mails_per_account: Option<Rate>,
    /// Password reset mails per email address.
    pub reset_mails_per_address: Option<Rate>,
}

/// Checks and counts attempts against the limits.
pub struct RateLimiter {
    login_per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    register_per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    login_failures_per_username: Option<Rate>,
    second_factor_failures_per_account: Option<Rate>,
    verification_mails_per_account: Option<Rate>,
    verification_mails_per_address: Option<Rate>,
    reset_mails_per_account: Option<Rate>,
    reset_mails_per_address: Option<Rate>,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> Self {
        let keyed = |rate: Rate| DefaultKeyedRateLimiter::keyed(rate.quota());
        Self {
            login_per_address: settings.login_per_address.map(keyed),
            register_per_address: settings.register_per_address.map(keyed),
            login_failures_per_username: settings.login_failures_per_username,
            second_factor_failures_per_account: settings.second_factor_failures_per_account,
            verification_mails_per_account: settings.verification_mails_per_account,
            verification_mails_per_address: settings.verification_mails_per_address,
            reset_mails_per_account: settings.reset_mails_per_account,
            reset_mails_per_address: settings.reset_mails_per_address,
        }
    }

    /// Counts a login attempt from `client`.
    pub fn admit_login(&self, client: IpAddr) -> Result<(), AuthError> {
        admit(self.login_per_address.as_ref(), client, "login_per_address")
    }

    /// Counts a registration from `client`.
    pub fn admit_registration(&self, client: IpAddr) -> Result<(), AuthError> {
        admit(
            self.register_per_address.as_ref(),
            client,
            "register_per_address",
        )
    }

    /// Refuses a login for a username whose failure budget is spent, before
    /// any password is looked at: the refusal is the same whether or not the
    /// password would have been right.
    pub async fn check_login_failures<S: RateLimitStore>(
        &self,
        store: &S,
        username_canonical: &str,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        check_budget(
            store,
            self.login_failures_per_username,
            &login_failure_key(username_canonical),
            now_ms,
            "login_failures_per_username",
        )
        .await
        .map(drop)
    }

    /// As [`check_login_failures`](Self::check_login_failures), on the
    /// budget as read with the account.
    pub fn check_read_login_failures(
        &self,
        facts: &AccountFacts,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        budget_verdict(
            self.login_failures_per_username,
            facts.login_failures_tat,
            now_ms,
            "login_failures_per_username",
        )
        .map(drop)
    }

    /// Spends one unit of a username's failure budget.
    pub async fn record_login_failure<S: RateLimitStore>(
        &self,
        store: &S,
        username_canonical: &str,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        spend_budget(
            store,
            self.login_failures_per_username,
            &login_failure_key(username_canonical),
            now_ms,
        )
        .await
    }

    /// Refuses a second-factor code for an account whose budget of wrong
    /// codes (as read with the account) is spent, before the code is
    /// looked at; otherwise says whether wrong codes are on record, so that
    /// a right one resets the budget only when there is something to reset
    /// (a write saved on each login).
    pub fn check_read_second_factor_failures(
        &self,
        facts: &AccountFacts,
        now_ms: i64,
    ) -> Result<bool, AuthError> {
        budget_verdict(
            self.second_factor_failures_per_account,
            facts.second_factor_failures_tat,
            now_ms,
            "second_factor_failures_per_account",
        )
    }

    /// Spends one unit of an account's budget of wrong codes.
    pub async fn record_second_factor_failure<S: RateLimitStore>(
        &self,
        store: &S,
        user_id: Uuid,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        spend_budget(
            store,
            self.second_factor_failures_per_account,
            &second_factor_failure_key(user_id),
            now_ms,
        )
        .await
    }

    /// A right code: the account's budget of wrong codes is full again.
    pub async fn reset_second_factor_failures<S: RateLimitStore>(
        &self,
        store: &S,
        user_id: Uuid,
    ) -> Result<(), AuthError> {
        store
            .delete_rate_limit(&second_factor_failure_key(user_id))
            .await
    }

    /// Counts a verification mail to `address_normalized` for `account`
    /// (none for a registration), or refuses it, spending nothing, when
    /// either budget is spent.
    pub async fn admit_verification_mail<S: RateLimitStore>(
        &self,
        store: &S,
        account: Option<Uuid>,
        address_normalized: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let budgets = [
            account.map(|user_id| {
                (
                    self.verification_mails_per_account,
                    format!("verification-mails-account:{user_id}"),
                    "verification_mails_per_account",
                )
            }),
            Some((
                self.verification_mails_per_address,
                format!("verification-mails-address:{address_normalized}"),
                "verification_mails_per_address",
            )),
        ];
        admit_mail(store, &budgets, now).await
    }

    /// Counts a password reset mail to `address_normalized` for `account`;
    /// whether it may be sent. Each budget is spent with one conditional
    /// write, since requests are served by concurrent background jobs that
    /// a check, then a spend, would let through together: the account's
    /// first, so that a spent one spends nothing; a spent address budget
    /// still spends the account's.
    pub async fn admit_reset_mail<S: RateLimitStore>(
        &self,
        store: &S,
        account: Uuid,
        address_normalized: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let now_ms = now.timestamp_millis();
        for (rate, key, name) in [
            (
                self.reset_mails_per_account,
                format!("reset-mails-account:{account}"),
                "reset_mails_per_account",
            ),
            (
                self.reset_mails_per_address,
                format!("reset-mails-address:{address_normalized}"),
                "reset_mails_per_address",
            ),
        ] {
            let Some(rate) = rate else {
                continue;
            };
            let interval = millis(rate.interval());
            let tolerance = interval * i64::from(rate.capacity.get() - 1);
            if !store
                .try_spend_rate_limit(&key, now_ms, interval, tolerance)
                .await?
            {
                crate::metrics::rate_limited(name);
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Forgets in-memory state of addresses whose budget is full again.
    pub fn forget_idle_addresses(&self) {
        for limiter in [&self.login_per_address, &self.register_per_address]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
        }
    }
}

/// A mail's budgets: `(rate, key, name)`, each checked before any is
/// spent, so that a refusal spends nothing.
type MailBudget = Option<(Option<Rate>, String, &'static str)>;

async fn admit_mail<S: RateLimitStore>(
    store: &S,
    budgets: &[MailBudget],
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let now_ms = now.timestamp_millis();
    for (rate, key, name) in budgets.iter().flatten() {
        check_budget(store, *rate, key, now_ms, name).await?;
    }
    for (rate, key, _) in budgets.iter().flatten() {
        spend_budget(store, *rate, key, now_ms).await?;
    }
    Ok(())
}

fn admit(
    limiter: Option<&DefaultKeyedRateLimiter<IpAddr>>,
    client: IpAddr,
    name: &'static str,
) -> Result<(), AuthError> {
    match limiter.map(|limiter| limiter.check_key(&client)) {
        Some(Err(not_until)) => {
            crate::metrics::rate_limited(name);
            Err(AuthError::RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            })
        }
        _ => Ok(()),
    }
}

/// GCRA over the store: refused while the key's theoretical arrival time
/// is more than `capacity - 1` intervals ahead.
/// Refuses what a spent budget forbids; otherwise says whether failures are
/// on record under `key`.
async fn check_budget<S: RateLimitStore>(
    store: &S,
    rate: Option<Rate>,
    key: &str,
    now_ms: i64,
    name: &'static str,
) -> Result<bool, AuthError> {
    if rate.is_none() {
        return Ok(false);
    }
    budget_verdict(rate, store.rate_limit_tat(key).await?, now_ms, name)
}

/// Refuses when the budget whose theoretical arrival time is `tat` is
/// spent; otherwise says whether anything is on record.
fn budget_verdict(
    rate: Option<Rate>,
    tat: Option<i64>,
    now_ms: i64,
    name: &'static str,
) -> Result<bool, AuthError> {
    let (Some(rate), Some(tat)) = (rate, tat) else {
        return Ok(false);
    };
    let tolerance = millis(rate.interval()) * i64::from(rate.capacity.get() - 1);
    let wait = tat - tolerance - now_ms;
    if wait > 0 {
        crate::metrics::rate_limited(name);
        return Err(AuthError::RateLimited {
            retry_after: Duration::from_millis(wait.unsigned_abs()),
        });
    }
    Ok(true)
}

async fn spend_budget<S: RateLimitStore>(
    store: &S,
    rate: Option<Rate>,
    key: &str,
    now_ms: i64,
) -> Result<(), AuthError> {
    match rate {
        Some(rate) => {
            store
                .advance_rate_limit_tat(key, now_ms, millis(rate.interval()))
                .await
        }
        None => Ok(()),
    }
}

/// What the key of a username's budget of failed logins starts with; its
/// canonical name follows.
pub const LOGIN_FAILURES_KEY_PREFIX: &str = "login-failures:";

fn login_failure_key(username_canonical: &str) -> String {
    format!("{LOGIN_FAILURES_KEY_PREFIX}{username_canonical}")
}

/// The key of an account's budget of wrong second-factor codes.
pub fn second_factor_failure_key(user_id: Uuid) -> String {
    format!("second-factor-failures:{user_id}")
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_capacity_over_period() {
        let rate: Rate = "60/1m".parse().unwrap();
        assert_eq!(rate.capacity.get(), 60);
        assert_eq!(rate.interval(), Duration::from_secs(1));
        assert!("0/1m".parse::<Rate>().is_err());
        assert!("10/0s".parse::<Rate>().is_err());
        assert!("ten per minute".parse::<Rate>().is_err());
    }

    #[test]
    fn an_address_gets_its_capacity_then_is_refused_alone() {
        let limiter = RateLimiter::new(RateLimitSettings {
            login_per_address: Some("3/1h".parse().unwrap()),
            register_per_address: None,
            login_failures_per_username: None,
            second_factor_failures_per_account: None,
            verification_mails_per_account: None,
            verification_mails_per_address: None,
            reset_mails_per_account: None,
            reset_mails_per_address: None,
        });
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            limiter.admit_login(attacker).unwrap();
        }
        let Err(AuthError::RateLimited { retry_after }) = limiter.admit_login(attacker) else {
            panic!("the fourth attempt must be refused");
        };
        assert!(
            retry_after > Duration::from_secs(60 * 19),
            "{retry_after:?}"
        );
        limiter.admit_login("192.0.2.2".parse().unwrap()).unwrap();
        limiter.admit_registration(attacker).unwrap();
    }
}
