//! The authentication use cases (register, login, refresh, logout, token checks, key
//! rotation), free of HTTP. Handlers translate requests into these calls and
//! [`AuthError`]s into responses.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_core::audit::{SecurityEvent, SecurityEventKind};
use latchkey_core::keys::{KeyError, KeyRing, SigningKey};
use latchkey_core::model::{
    Email, InvalidInput, Password, RefreshState, Role, Session, SessionId, User, UserId,
};
use latchkey_core::refresh::{RefreshKeys, RefreshToken, TokenLocator};
use latchkey_core::rotation::{decide, RefreshRejection, RotationDecision, RotationPolicy};
use latchkey_core::store::{Revoked, RotateOutcome, Rotation, Store, StoreError};
use latchkey_core::time::Timestamp;
use latchkey_verify::{verify_access_token, AccessClaims, TokenError, Validation};
use tokio::sync::Mutex;

use crate::clock;
use crate::config::{Config, RateSpec};
use crate::hashing::{HashJobError, HashPool};
use crate::ratelimit::{RateDecision, RateLimiter};
use crate::revocation::{RevocationCache, RevocationFanout};
use crate::token_cache::VerifiedTokenCache;

/// Everything that can go wrong in a use case, in domain words.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// An input value was refused.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// Registration with an address in use.
    #[error("a user with this e-mail address exists already")]
    EmailTaken,
    /// Unknown user or wrong password (deliberately the same).
    #[error("invalid e-mail address or password")]
    InvalidCredentials,
    /// A refresh was refused.
    #[error("refresh refused: {0:?}")]
    Refresh(RefreshRejection),
    /// A spent refresh token was replayed: the session is revoked.
    #[error("refresh token reuse detected; the session has been revoked")]
    RefreshTokenReused,
    /// An access token was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Too many requests.
    #[error("too many requests")]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// Password hashing is saturated.
    #[error("the server is busy")]
    Overloaded,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key material or another internal invariant failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<KeyError> for AuthError {
    fn from(e: KeyError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<latchkey_core::password::PasswordError> for AuthError {
    fn from(e: latchkey_core::password::PasswordError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<HashJobError> for AuthError {
    fn from(e: HashJobError) -> Self {
        match e {
            HashJobError::Overloaded => Self::Overloaded,
            HashJobError::Failed => Self::Internal("password hashing failed".into()),
        }
    }
}

/// Who is asking: recorded in the audit log and used for rate limits.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The client's IP address.
    pub client_ip: Option<String>,
    /// The `User-Agent` header, truncated to 256 bytes.
    pub user_agent: Option<String>,
}

/// A freshly issued pair.
#[derive(Debug)]
pub struct IssuedTokens {
    /// The access token (JWT).
    pub access_token: String,
    /// Its lifetime.
    pub expires_in: Duration,
    /// The refresh token for the client to keep.
    pub refresh_token: RefreshToken,
    /// The refresh token's idle lifetime.
    pub refresh_expires_in: Duration,
    /// The session (`sid`).
    pub session_id: SessionId,
}

/// The lifetimes and identities the service works with, from the config.
#[derive(Debug, Clone)]
pub struct ServicePolicy {
    /// Rotation lifetimes.
    pub rotation: RotationPolicy,
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Accepted clock skew.
    pub leeway: Duration,
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// Algorithm of newly made keys.
    pub algorithm: latchkey_verify::Algorithm,
    /// A configured HS256 secret, used as the active key instead of a stored one.
    pub hs256_secret: Option<Vec<u8>>,
    /// Rate limits.
    pub limits: RateLimits,
    /// How many verified access tokens to remember (0: verify every time).
    pub verified_token_cache: usize,
}

/// The configured rate limits.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Registrations per IP.
    pub register_per_ip: RateSpec,
    /// Logins per IP.
    pub login_per_ip: RateSpec,
    /// Logins per account.
    pub login_per_account: RateSpec,
    /// Refreshes per IP.
    pub refresh_per_ip: RateSpec,
    /// Refreshes per account.
    pub refresh_per_account: RateSpec,
}

impl ServicePolicy {
    /// The policy the config describes.
    pub fn from_config(config: &Config) -> Self {
        Self {
            rotation: RotationPolicy {
                idle_ttl: config.refresh_ttl.0,
                session_lifetime: config.session_lifetime.0,
                reuse_grace: config.reuse_grace.0,
            },
            access_ttl: config.access_ttl.0,
            leeway: config.leeway.0,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            algorithm: config.algorithm,
            hs256_secret: config
                .hs256_secret
                .as_ref()
                .map(|s| secrecy::ExposeSecret::expose_secret(s).as_bytes().to_vec()),
            verified_token_cache: config.verified_token_cache,
            limits: RateLimits {
                register_per_ip: config.rate_register_per_ip,
                login_per_ip: config.rate_login_per_ip,
                login_per_account: config.rate_login_per_account,
                refresh_per_ip: config.rate_refresh_per_ip,
                refresh_per_account: config.rate_refresh_per_account,
            },
        }
    }

    /// How long after a revocation access tokens issued before it can still be presented.
    fn access_tokens_outlive_by(&self) -> Duration {
        self.access_ttl + self.leeway
    }
}

/// The use cases, sharing the store, keys, revocation cache and limits.
pub struct AuthService {
    store: Arc<dyn Store>,
    policy: ServicePolicy,
    validation: Validation,
    refresh_keys: RefreshKeys,
    key_ring: RwLock<Arc<KeyRing>>,
    key_reload: Mutex<Option<Timestamp>>,
    revocations: RevocationCache,
    verified: VerifiedTokenCache,
    limiter: Arc<dyn RateLimiter>,
    fanout: Option<Arc<dyn RevocationFanout>>,
    hashing: HashPool,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

const MIN_KEY_RELOAD_GAP: Duration = Duration::from_secs(1);

impl AuthService {
    /// Set up keys (first start makes and stores them), load what is revoked, and build
    /// the service.
    pub async fn start(
        store: Arc<dyn Store>,
        policy: ServicePolicy,
        limiter: Arc<dyn RateLimiter>,
        fanout: Option<Arc<dyn RevocationFanout>>,
        hashing: HashPool,
    ) -> Result<Self, AuthError> {
        let now = clock::now();
        let master = store
            .secret_or_insert(
                "refresh_token_master",
                &RefreshKeys::generate_master_secret(),
            )
            .await?;
        let refresh_keys = RefreshKeys::from_master_secret(&master)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        ensure_signing_key(store.as_ref(), &policy, now).await?;
        let ring = load_key_ring(store.as_ref(), &policy).await?;
        let validation = Validation {
            issuer: policy.issuer.clone(),
            audience: policy.audience.clone(),
            leeway: policy.leeway,
        };
        let service = Self {
            store,
            validation,
            refresh_keys,
            key_ring: RwLock::new(Arc::new(ring)),
            key_reload: Mutex::new(None),
            revocations: RevocationCache::default(),
            verified: VerifiedTokenCache::new(policy.verified_token_cache),
            limiter,
            fanout,
            hashing,
            policy,
        };
        service
            .revocations
            .sync_from(service.store.as_ref(), now)
            .await?;
        Ok(service)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The password-hashing threads.
    pub fn hashing(&self) -> &HashPool {
        &self.hashing
    }

    /// The policy.
    pub fn policy(&self) -> &ServicePolicy {
        &self.policy
    }

    /// The revocation cache.
    pub fn revocations(&self) -> &RevocationCache {
        &self.revocations
    }

    /// The current key ring.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        match self.key_ring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn limit(&self, key: String, spec: RateSpec) -> Result<(), AuthError> {
        match self.limiter.check(&key, spec).await {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => Err(AuthError::RateLimited { retry_after }),
        }
    }

    async fn limit_ip(
        &self,
        action: &str,
        ctx: &RequestContext,
        spec: RateSpec,
    ) -> Result<(), AuthError> {
        let ip = ctx.client_ip.as_deref().unwrap_or("unknown");
        self.limit(format!("{action}:ip:{ip}"), spec).await
    }

    fn event(
        &self,
        kind: SecurityEventKind,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> SecurityEvent {
        SecurityEvent {
            at: now,
            kind,
            user_id: None,
            session_id: None,
            client_ip: ctx.client_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            detail: None,
        }
    }

    async fn record(&self, event: SecurityEvent) {
        // The audit log must not make a login fail; a lost event is logged loudly instead.
        if let Err(e) = self.store.record_event(&event).await {
            tracing::error!(kind = event.kind.as_str(), error = %e, "could not record security event");
        }
    }

    /// Create an account with the `user` role.
    pub async fn register(
        &self,
        email: &str,
        password: String,
        ctx: &RequestContext,
    ) -> Result<User, AuthError> {
        self.limit_ip("register", ctx, self.policy.limits.register_per_ip)
            .await?;
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        self.limit(
            format!("register:account:{email}"),
            self.policy.limits.register_per_ip,
        )
        .await?;
        self.create_user(email, password, vec![Role::user()], ctx)
            .await
    }

    /// Create an account with the given roles (for the CLI and admins).
    pub async fn create_user(
        &self,
        email: Email,
        password: Password,
        roles: Vec<Role>,
        ctx: &RequestContext,
    ) -> Result<User, AuthError> {
        let _lane = self.hashing.lane();
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(AuthError::EmailTaken);
        }
        let password_hash = self
            .hashing
            .run(move |hasher, memory| hasher.hash(&password, memory))
            .await??;
        let now = clock::now();
        let user = User {
            id: UserId::generate(),
            email,
            password_hash,
            roles,
            created_at: now,
        };
        self.store.insert_user(&user).await.map_err(|e| match e {
            StoreError::EmailTaken => AuthError::EmailTaken,
            other => AuthError::Store(other),
        })?;
        let mut event = self.event(SecurityEventKind::UserRegistered, ctx, now);
        event.user_id = Some(user.id);
        self.record(event).await;
        Ok(user)
    }

    /// Check credentials and start a session.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        ctx: &RequestContext,
    ) -> Result<IssuedTokens, AuthError> {
        let _lane = self.hashing.lane();
        self.limit_ip("login", ctx, self.policy.limits.login_per_ip)
            .await?;
        if password.len() > 1024 {
            return Err(InvalidInput::PasswordTooLong.into());
        }
        // An address that cannot be valid still costs a hash, like an unknown one.
        let email = Email::parse(email).ok();
        if let Some(email) = &email {
            self.limit(
                format!("login:account:{email}"),
                self.policy.limits.login_per_account,
            )
            .await?;
        }
        let user = match &email {
            Some(email) => self.store.user_by_email(email).await?,
            None => None,
        };
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let matches = self
            .hashing
            .run(move |hasher, memory| {
                hasher.verify(password.as_bytes(), stored_hash.as_deref(), memory)
            })
            .await?;
        let now = clock::now();
        let Some(user) = user.filter(|_| matches) else {
            let mut event = self.event(SecurityEventKind::LoginFailed, ctx, now);
            event.detail = email.map(|e| format!("email={e}"));
            self.record(event).await;
            return Err(AuthError::InvalidCredentials);
        };
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            created_at: now,
            latest_generation: 0,
            revoked_at: None,
        };
        let refresh_token = self.refresh_keys.new_token(session.id);
        self.store
            .create_session(&session, &self.refresh_keys.hash(&refresh_token))
            .await?;
        let mut event = self.event(SecurityEventKind::LoginSucceeded, ctx, now);
        event.user_id = Some(user.id);
        event.session_id = Some(session.id);
        self.record(event).await;
        self.issue(user.id, &user.roles, session.id, refresh_token, now)
    }

    fn issue(
        &self,
        user_id: UserId,
        roles: &[Role],
        session_id: SessionId,
        refresh_token: RefreshToken,
        now: Timestamp,
    ) -> Result<IssuedTokens, AuthError> {
        let access_token = self.sign_access_token(user_id, roles, session_id, now)?;
        Ok(IssuedTokens {
            access_token,
            expires_in: self.policy.access_ttl,
            refresh_token,
            refresh_expires_in: self.policy.rotation.idle_ttl,
            session_id,
        })
    }

    fn sign_access_token(
        &self,
        user_id: UserId,
        roles: &[Role],
        session_id: SessionId,
        now: Timestamp,
    ) -> Result<String, AuthError> {
        let mut jti = [0u8; 16];
        aws_lc_rs_fill(&mut jti)?;
        let iat = now.unix_seconds();
        let claims = AccessClaims {
            iss: self.policy.issuer.clone(),
            sub: user_id.to_string(),
            aud: vec![self.policy.audience.clone()],
            sid: session_id.to_string(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            iat,
            exp: iat + i64::try_from(self.policy.access_ttl.as_secs()).unwrap_or(i64::MAX / 2),
            nbf: None,
            jti: URL_SAFE_NO_PAD.encode(jti),
        };
        Ok(self.key_ring().active().sign(&claims)?)
    }

    /// Exchange a refresh token for a new pair (see [`decide`] for the rules).
    pub async fn refresh(
        &self,
        raw_token: &str,
        ctx: &RequestContext,
    ) -> Result<IssuedTokens, AuthError> {
        self.limit_ip("refresh", ctx, self.policy.limits.refresh_per_ip)
            .await?;
        let presented =
            RefreshToken::parse(raw_token).ok_or(AuthError::Refresh(RefreshRejection::Invalid))?;
        let lookup = self.refresh_keys.lookup(&presented);
        // A lost compare-and-set means another request rotated the same token a moment
        // ago; deciding again then yields the grace-window answer.
        for _ in 0..3 {
            let state = self.store.refresh_state(&lookup).await?;
            let now = clock::now();
            let decision = decide(
                state.as_ref().map(|s| (&s.token, &s.session)),
                now,
                &self.policy.rotation,
            );
            let Some(RefreshState {
                token,
                session,
                roles,
            }) = state
            else {
                return Err(AuthError::Refresh(RefreshRejection::Invalid));
            };
            let successor = |generation| {
                let at = TokenLocator {
                    session_id: session.id,
                    generation,
                };
                self.refresh_keys.successor(&presented, at)
            };
            match decision {
                RotationDecision::Reject(rejection) => return Err(AuthError::Refresh(rejection)),
                RotationDecision::ReuseDetected => {
                    self.revoke_session(
                        session.id,
                        Some(session.user_id),
                        SecurityEventKind::RefreshReuseDetected,
                        ctx,
                        now,
                    )
                    .await?;
                    tracing::warn!(session = %session.id, user = %session.user_id, "refresh token reuse detected; session revoked");
                    return Err(AuthError::RefreshTokenReused);
                }
                RotationDecision::ReplaySuccessor => {
                    // `decide` replays only when the successor is the session's newest.
                    let next = successor(session.latest_generation);
                    return self.issue(session.user_id, &roles, session.id, next, now);
                }
                RotationDecision::Rotate {
                    successor_generation,
                } => {
                    self.limit(
                        format!("refresh:account:{}", session.user_id),
                        self.policy.limits.refresh_per_account,
                    )
                    .await?;
                    let next = successor(successor_generation);
                    let rotation = Rotation {
                        session_id: session.id,
                        presented: lookup.hash.clone(),
                        presented_generation: token.generation,
                        successor: self.refresh_keys.hash(&next),
                        now,
                    };
                    match self.store.rotate(&rotation).await? {
                        RotateOutcome::Rotated => {
                            return self.issue(session.user_id, &roles, session.id, next, now)
                        }
                        RotateOutcome::Conflict => continue,
                    }
                }
            }
        }
        Err(AuthError::Internal(
            "refresh rotation did not settle".into(),
        ))
    }

    /// Revoke a session in the store (with its audit event) and in this process.
    async fn revoke_session(
        &self,
        session_id: SessionId,
        user_id: Option<UserId>,
        kind: SecurityEventKind,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let until = now.plus(self.policy.access_tokens_outlive_by());
        let mut event = self.event(kind, ctx, now);
        event.session_id = Some(session_id);
        event.user_id = user_id;
        self.store
            .revoke_session(session_id, now, until, &event)
            .await?;
        self.revoke_locally(Revoked::Session(session_id), until)
            .await;
        Ok(())
    }

    /// Put a revocation (already in the store) into this process's cache and announce it
    /// to the other replicas.
    async fn revoke_locally(&self, revoked: Revoked, until: Timestamp) {
        self.revocations.insert(revoked.clone(), until);
        if let Some(fanout) = &self.fanout {
            fanout.announce(&revoked, until).await;
        }
    }

    /// End a session: by its refresh token, by an access token of it, or both. The access
    /// token's `jti` is denied until it expires. Unknown or invalid tokens are ignored
    /// (logout is idempotent).
    pub async fn logout(
        &self,
        raw_refresh_token: Option<&str>,
        access_token: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let now = clock::now();
        let mut sessions = Vec::new();
        if let Some(token) = raw_refresh_token.and_then(RefreshToken::parse) {
            if let Some(RefreshState { session, .. }) = self
                .store
                .refresh_state(&self.refresh_keys.lookup(&token))
                .await?
            {
                sessions.push((session.id, Some(session.user_id)));
            }
        }
        if let Some(token) = access_token {
            if let Ok(claims) = self.verify_signature_and_claims(token) {
                let until = Timestamp::from_unix_millis(claims.exp.saturating_mul(1000))
                    .plus(self.policy.leeway);
                self.store.deny_access_token(&claims.jti, until).await?;
                self.revoke_locally(Revoked::AccessToken(claims.jti.clone()), until)
                    .await;
                if let Ok(sid) = claims.sid.parse::<SessionId>() {
                    sessions.push((sid, claims.sub.parse::<UserId>().ok()));
                }
            }
        }
        sessions.dedup_by_key(|(session_id, _)| *session_id);
        for (session_id, user_id) in sessions {
            self.revoke_session(session_id, user_id, SecurityEventKind::Logout, ctx, now)
                .await?;
        }
        Ok(())
    }

    fn verify_signature_and_claims(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let now = clock::now().unix_seconds();
        verify_access_token(
            token,
            self.key_ring().verification_keys(),
            &self.validation,
            now,
        )
    }

    /// Check an access token: signature (algorithm from the key), `typ`, `iss`, `aud`,
    /// `exp`, then revocation of the token and of its session. No I/O unless the `kid` is
    /// unknown, when the key ring is reloaded (at most once a second) in case another
    /// replica rotated keys.
    pub async fn authenticate(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let now = clock::now().unix_seconds();
        let leeway = i64::try_from(self.policy.leeway.as_secs()).unwrap_or(0);
        let claims = match self.verified.get(token, now, leeway) {
            Some(claims) => claims,
            None => {
                let claims = match self.verify_signature_and_claims(token) {
                    Err(TokenError::UnknownKey) if self.reload_keys_if_due().await => {
                        self.verify_signature_and_claims(token)?
                    }
                    other => other?,
                };
                let claims = Arc::new(claims);
                self.verified.insert(token, claims.clone());
                claims
            }
        };
        let sid = claims.sid.parse::<SessionId>().ok();
        if self.revocations.is_revoked(&claims.jti, sid) {
            return Err(TokenError::Revoked);
        }
        Ok(AccessClaims::clone(&claims))
    }

    /// Reload the key ring unless that happened less than a second ago. Returns whether
    /// a reload happened.
    async fn reload_keys_if_due(&self) -> bool {
        let mut last = self.key_reload.lock().await;
        let now = clock::now();
        if last.is_some_and(|at| now < at.plus(MIN_KEY_RELOAD_GAP)) {
            return false;
        }
        *last = Some(now);
        match self.reload_keys().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not reload signing keys");
                false
            }
        }
    }

    /// Reload the key ring from the store.
    pub async fn reload_keys(&self) -> Result<(), AuthError> {
        let ring = load_key_ring(self.store.as_ref(), &self.policy).await?;
        if let Ok(mut current) = self.key_ring.write() {
            *current = Arc::new(ring);
        }
        Ok(())
    }

    /// Make a new signing key the active one; the previous one keeps verifying.
    pub async fn rotate_keys(&self, ctx: &RequestContext) -> Result<String, AuthError> {
        let kid = rotate_signing_key(self.store.as_ref(), &self.policy, clock::now()).await?;
        self.reload_keys().await?;
        let mut event = self.event(SecurityEventKind::SigningKeyRotated, ctx, clock::now());
        event.detail = Some(format!("kid={kid}"));
        self.record(event).await;
        Ok(kid)
    }

    /// Housekeeping: drop expired revocations, ended sessions and keys no token needs.
    pub async fn purge(&self) -> Result<u64, AuthError> {
        let now = clock::now();
        self.revocations.purge(now);
        let mut purged = self
            .store
            .purge_expired(now, now.minus(self.policy.rotation.session_lifetime))
            .await?;
        let keys_needed_since =
            now.minus(self.policy.access_tokens_outlive_by() + Duration::from_secs(60));
        purged += self
            .store
            .delete_signing_keys_retired_before(keys_needed_since)
            .await?;
        Ok(purged)
    }
}

fn aws_lc_rs_fill(bytes: &mut [u8]) -> Result<(), AuthError> {
    aws_lc_rs::rand::fill(bytes).map_err(|_| AuthError::Internal("random source failed".into()))
}

/// On first start (no keys yet) make one; when the configured algorithm differs from the
/// active key's, rotate to a key of the configured algorithm.
async fn ensure_signing_key(
    store: &dyn Store,
    policy: &ServicePolicy,
    now: Timestamp,
) -> Result<(), AuthError> {
    let keys = store.signing_keys().await?;
    let active = keys.iter().find(|k| k.retired_at.is_none());
    match active {
        None => {
            let key = SigningKey::generate(policy.algorithm, now)?;
            if !store.insert_first_signing_key(&key).await? {
                tracing::info!("another replica made the first signing key");
            }
        }
        Some(active)
            if active.algorithm != policy.algorithm.as_str() && policy.hs256_secret.is_none() =>
        {
            tracing::info!(from = %active.algorithm, to = %policy.algorithm, "signing algorithm changed; rotating key");
            if let Err(e) = rotate_signing_key(store, policy, now).await {
                // Replicas starting together may race to rotate; one winner is enough.
                let rotated_by_another =
                    store.signing_keys().await?.iter().any(|k| {
                        k.retired_at.is_none() && k.algorithm == policy.algorithm.as_str()
                    });
                if !rotated_by_another {
                    return Err(e);
                }
            }
        }
        Some(_) => {}
    }
    Ok(())
}

/// Store a new active key of the configured algorithm, retiring the current one.
pub async fn rotate_signing_key(
    store: &dyn Store,
    policy: &ServicePolicy,
    now: Timestamp,
) -> Result<String, AuthError> {
    let key = SigningKey::generate(policy.algorithm, now)?;
    store.rotate_signing_key(&key).await?;
    Ok(key.kid)
}

async fn load_key_ring(store: &dyn Store, policy: &ServicePolicy) -> Result<KeyRing, AuthError> {
    let stored = store.signing_keys().await?;
    let ring = match &policy.hs256_secret {
        Some(secret) => KeyRing::with_active(SigningKey::hs256_from_secret(secret)?, &stored)?,
        None => KeyRing::from_stored(&stored)?,
    };
    Ok(ring)
}
