//! Refresh-token state reads on PostgreSQL, batched: the reads waiting at one moment are
//! answered by one statement and one round trip, as the SQLite refresh lane answers its
//! reads. A read sees what had committed when its statement began, as an unbatched read
//! would: a caller whose rotation was answered reads it, since answers follow commits.

use latchkey_core::mfa::AuthMethods;
use latchkey_core::model::{RefreshState, RefreshTokenRecord};
use latchkey_core::refresh::{RefreshTokenHash, RefreshTokenLookup};
use latchkey_core::store::StoreError;
use sqlx::postgres::PgRow;
use sqlx::PgPool;

use super::batch_queue::BatchQueue;
use super::{get, session_from_row};
use crate::convert::{generation_from_db, generation_to_db, opt_ts, roles_from_db, ts};
use crate::error::{copy_error, map_error};

/// The columns a state is made of: the token's row, its session, the user's roles.
macro_rules! state_columns {
    () => {
        "t.generation, t.issued_at, t.spent_at, \
         s.id, s.user_id, s.created_at, s.latest_generation, s.revoked_at, u.roles, \
         s.auth_methods, (u.email_verified_at IS NOT NULL) AS email_verified"
    };
}

/// The states of tokens with locators, each found through the `(session_id,
/// generation)` key and only with its hash; `position` (from 1) says which lookup a row
/// answers. A lookup that finds nothing has no row.
const STATES_AT_LOCATORS: &str = concat!(
    "SELECT l.position, ",
    state_columns!(),
    " FROM unnest($1::uuid[], $2::bigint[], $3::bytea[]) WITH ORDINALITY \
          AS l(session_id, generation, hash, position) \
      JOIN refresh_tokens t ON t.session_id = l.session_id AND t.generation = l.generation \
                           AND t.hash = l.hash \
      JOIN sessions s ON s.id = t.session_id \
      JOIN users u ON u.id = s.user_id"
);

/// A token from before locators, found by its hash, the primary key (migration 0002).
const STATE_BY_LEGACY_HASH: &str = concat!(
    "SELECT ",
    state_columns!(),
    " FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
      JOIN users u ON u.id = s.user_id \
      WHERE t.hash = $1 AND t.legacy"
);

/// Read batches run at once: reads are independent, so while one waits for its answer
/// the next can go out on another connection of the pool.
const IN_FLIGHT: usize = 4;

/// The queue through which the store reads token states.
pub(super) type StateBatcher = BatchQueue<RefreshTokenLookup, Option<RefreshState>>;

/// Start the read batches on `pool` (inside a Tokio runtime).
pub(super) fn start(pool: PgPool) -> StateBatcher {
    BatchQueue::start("token state", IN_FLIGHT, move |lookups| {
        let pool = pool.clone();
        async move { read(&pool, &lookups).await }
    })
}

type Answer = Result<Option<RefreshState>, StoreError>;

/// Answer one batch of lookups, in order: those with locators in one statement, the
/// rare legacy ones one by one.
async fn read(pool: &PgPool, lookups: &[RefreshTokenLookup]) -> Vec<Answer> {
    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(lookups.len());
    let mut located = Located::default();
    for (i, lookup) in lookups.iter().enumerate() {
        if lookup.locator.is_some() {
            located.push(i, lookup);
            answers.push(None);
        } else {
            answers.push(Some(legacy(pool, &lookup.hash).await));
        }
    }
    if !located.indices.is_empty() {
        match located.states(pool, lookups).await {
            Ok(states) => {
                for &i in &located.indices {
                    answers[i] = Some(Ok(None));
                }
                for (i, state) in states {
                    answers[i] = Some(Ok(Some(state)));
                }
            }
            Err(e) => {
                for &i in &located.indices {
                    answers[i] = Some(Err(copy_error(&e)));
                }
            }
        }
    }
    answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|| Err(misaligned())))
        .collect()
}

/// The lookups of a batch that have locators: their places in the batch and
/// [`STATES_AT_LOCATORS`]'s array parameters.
#[derive(Default)]
struct Located {
    indices: Vec<usize>,
    sessions: Vec<uuid::Uuid>,
    generations: Vec<i64>,
    hashes: Vec<Vec<u8>>,
}

impl Located {
    fn push(&mut self, index: usize, lookup: &RefreshTokenLookup) {
        if let Some(at) = lookup.locator {
            self.indices.push(index);
            self.sessions.push(at.session_id.as_uuid());
            self.generations.push(generation_to_db(at.generation));
            self.hashes.push(lookup.hash.as_bytes().to_vec());
        }
    }

    /// The states found, each with the index of the lookup it answers.
    async fn states(
        &self,
        pool: &PgPool,
        lookups: &[RefreshTokenLookup],
    ) -> Result<Vec<(usize, RefreshState)>, StoreError> {
        let rows = sqlx::query(STATES_AT_LOCATORS)
            .bind(&self.sessions)
            .bind(&self.generations)
            .bind(&self.hashes)
            .fetch_all(pool)
            .await
            .map_err(map_error)?;
        rows.iter()
            .map(|row| found(row, lookups, &self.indices))
            .collect()
    }
}

/// Which lookup `row` answers (its index in the batch) and the state it holds.
fn found(
    row: &PgRow,
    lookups: &[RefreshTokenLookup],
    located: &[usize],
) -> Result<(usize, RefreshState), StoreError> {
    let position: i64 = get(row, "position")?;
    let i = usize::try_from(position - 1)
        .ok()
        .and_then(|p| located.get(p).copied())
        .ok_or_else(misaligned)?;
    Ok((i, state_from_row(row, &lookups[i].hash)?))
}

fn misaligned() -> StoreError {
    StoreError::Internal("token state batch misaligned".to_owned())
}

/// The state of a token from before locators.
async fn legacy(pool: &PgPool, hash: &RefreshTokenHash) -> Answer {
    let row = sqlx::query(STATE_BY_LEGACY_HASH)
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(pool)
        .await
        .map_err(map_error)?;
    row.map(|row| state_from_row(&row, hash)).transpose()
}

/// A state from the columns of [`state_columns`].
fn state_from_row(row: &PgRow, hash: &RefreshTokenHash) -> Result<RefreshState, StoreError> {
    let session = session_from_row(row)?;
    let token = RefreshTokenRecord {
        hash: hash.clone(),
        session_id: session.id,
        generation: generation_from_db(get(row, "generation")?)?,
        issued_at: ts(get(row, "issued_at")?),
        spent_at: opt_ts(get(row, "spent_at")?),
    };
    Ok(RefreshState {
        token,
        session,
        roles: roles_from_db(&get::<String>(row, "roles")?)?,
        auth_methods: AuthMethods::from_db(get::<Option<String>>(row, "auth_methods")?.as_deref()),
        email_verified: get(row, "email_verified")?,
    })
}
