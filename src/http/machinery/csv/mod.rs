//! `Accept: text/csv` on lists: every matching row, streamed in keyset batches.
//!
//! Each batch is one short `db::run` (a connection is held only while a batch loads), so a slow
//! download holds no connection or blocking thread between batches, and memory stays at two
//! batches whatever the export's size: the next batch loads while this one is written as CSV
//! (on another blocking thread, with no connection), so the database's time and ours overlap
//! instead of adding up. Concurrent exports per process are capped (429 beyond).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::pg::Pg;
use diesel::{PgConnection, QueryableByName};
use serde::Serialize;
use serde_json::Value as Json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::db::list::{Keyed, ListQuery};
use crate::db::{self, PgPool};
use crate::error::ApiError;

mod cells;

/// Rows per batch query.
const BATCH: u32 = 2500;

/// The media type of exports.
pub const TEXT_CSV: &str = "text/csv; charset=utf-8";

/// How many CSV exports may stream at once in this process.
#[derive(Debug, Clone)]
pub struct ExportPermits(Arc<Semaphore>);

impl ExportPermits {
    /// Allows `n` concurrent exports.
    pub fn new(n: usize) -> Self {
        Self(Arc::new(Semaphore::new(n.max(1))))
    }
}

/// True when the client asks for CSV (`Accept: text/csv`).
pub fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';');
            let is_csv = parts
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"));
            // RFC 9110 §12.4.2: `q=0` means "not acceptable".
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            is_csv && !refused
        })
}

/// A leaf's cell: null empty, text as it is, a list's items joined with `;`, an object inside
/// a list as its members' values joined with `:` (in member-name order).
fn scalar(value: &Json) -> String {
    match value {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        Json::Object(map) => {
            let members: BTreeMap<&String, &Json> = map.iter().collect();
            members
                .values()
                .map(|v| scalar(v))
                .collect::<Vec<_>>()
                .join(":")
        }
        Json::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

/// A whole answer's rows as CSV with a header line (answers small enough to build at once,
/// such as statistics; lists stream through [`export`]).
pub fn table<R: Serialize>(rows: &[R], columns: &[&str]) -> Result<Bytes, ApiError> {
    csv_bytes(rows, columns, true)
}

fn csv_bytes<R: Serialize>(rows: &[R], columns: &[&str], header: bool) -> Result<Bytes, ApiError> {
    // RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote or line break.
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(rows.len() * 256));
    if header {
        writer.write_record(columns).map_err(ApiError::internal)?;
    }
    let columns = cells::Columns::new(columns);
    let mut cells = cells::Row::new(&columns);
    for row in rows {
        writer
            .write_record(cells.fill(row).map_err(ApiError::internal)?)
            .map_err(ApiError::internal)?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// One batch loaded: its records, and the cursor after it (`None` after the last row).
type Loaded<R> = (Vec<R>, Option<String>);

struct Export<F, R> {
    pool: PgPool,
    reader: db::Reader,
    query: ListQuery,
    /// Where the first batch begins; the later ones begin where their batch's load said.
    cursor: Option<String>,
    remaining: Option<u64>,
    header: bool,
    done: bool,
    /// The batch loaded while the previous one was written, to be written next (or why it
    /// could not be, answered once what came before it has been sent).
    loaded: Option<Result<Loaded<R>, ApiError>>,
    convert: F,
    columns: &'static [&'static str],
    _permit: OwnedSemaphorePermit,
}

/// Rows the next batch asks for: a whole batch, or what is left of the client's `limit`.
fn batch_size(remaining: Option<u64>) -> u32 {
    remaining.map_or(BATCH, |r| {
        u32::try_from(r.min(u64::from(BATCH))).unwrap_or(BATCH)
    })
}

/// Loads `batch` rows of `query` after `cursor` and converts them, in one `db::run`.
async fn load_batch<T, R, F>(
    pool: &PgPool,
    reader: &db::Reader,
    query: &ListQuery,
    cursor: Option<String>,
    batch: u32,
    convert: F,
) -> Result<Loaded<R>, ApiError>
where
    T: QueryableByName<Pg> + Keyed + 'static,
    R: Send + 'static,
    F: Fn(&mut PgConnection, Vec<T>) -> Result<Vec<R>, ApiError> + Send + 'static,
{
    if batch == 0 {
        return Ok((Vec::new(), None));
    }
    let mut query = query.clone();
    query.limit = Some(batch);
    db::read(pool, reader, move |conn, _| {
        let page = query.load::<T>(conn, cursor.as_deref(), false)?;
        Ok((convert(conn, page.data)?, page.next_cursor))
    })
    .await
    .inspect_err(|e| tracing::error!(error = %e, "CSV export failed mid-stream"))
}

/// Writes a batch as CSV on a blocking thread (it needs no connection), off the async workers.
async fn write_batch<R: Serialize + Send + 'static>(
    rows: Vec<R>,
    columns: &'static [&'static str],
    header: bool,
) -> Result<Bytes, ApiError> {
    web::block(move || csv_bytes(&rows, columns, header))
        .await
        .map_err(ApiError::internal)?
        .inspect_err(|e| tracing::error!(error = %e, "CSV export failed mid-stream"))
}

/// Streams `query` as CSV from `cursor` on: every row, or `query.limit` rows when the client
/// gave `limit`. `convert` turns a batch of rows into records (in a fixed number of queries).
pub fn export<T, R, F>(
    req: &HttpRequest,
    pool: &PgPool,
    mut query: ListQuery,
    cursor: Option<String>,
    name: &str,
    columns: &'static [&'static str],
    convert: F,
) -> Result<HttpResponse, ApiError>
where
    T: QueryableByName<Pg> + Keyed + 'static,
    R: Serialize + Send + 'static,
    F: Fn(&mut PgConnection, Vec<T>) -> Result<Vec<R>, ApiError> + Clone + Send + 'static,
{
    let permits = req
        .app_data::<web::Data<ExportPermits>>()
        .ok_or_else(|| ApiError::internal("ExportPermits missing from app data"))?;
    let permit = Arc::clone(&permits.0)
        .try_acquire_owned()
        .map_err(|_| ApiError::RateLimited {
            detail: "too many CSV exports are running; retry shortly".into(),
            retry_after: Duration::from_secs(5),
        })?;
    query.check_cursor(cursor.as_deref())?;
    let remaining = query.limit.map(u64::from);
    query.limit = Some(BATCH);
    let state = Export {
        pool: pool.clone(),
        reader: super::etag::reader(req),
        query,
        cursor,
        remaining,
        header: true,
        done: false,
        loaded: None,
        convert,
        columns,
        _permit: permit,
    };
    let stream = futures_util::stream::try_unfold(state, |mut st| async move {
        if st.done {
            return Ok::<_, ApiError>(None);
        }
        let (rows, next) = match st.loaded.take() {
            Some(loaded) => loaded?,
            None => {
                let cursor = st.cursor.take();
                let batch = batch_size(st.remaining);
                load_batch::<T, R, F>(
                    &st.pool,
                    &st.reader,
                    &st.query,
                    cursor,
                    batch,
                    st.convert.clone(),
                )
                .await?
            }
        };
        if let Some(r) = st.remaining.as_mut() {
            *r = r.saturating_sub(rows.len() as u64);
        }
        st.done = next.is_none() || st.remaining == Some(0);
        let header = std::mem::replace(&mut st.header, false);
        let bytes = if st.done {
            write_batch(rows, st.columns, header).await?
        } else {
            // The next batch loads while this one is written.
            let batch = batch_size(st.remaining);
            let load = load_batch::<T, R, F>(
                &st.pool,
                &st.reader,
                &st.query,
                next,
                batch,
                st.convert.clone(),
            );
            let (bytes, loaded) =
                futures_util::future::join(write_batch(rows, st.columns, header), load).await;
            st.loaded = Some(loaded);
            bytes?
        };
        Ok(Some((bytes, st)))
    });
    Ok(HttpResponse::Ok()
        .content_type(TEXT_CSV)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.csv\""),
        ))
        .insert_header((header::CACHE_CONTROL, super::etag::PRIVATE_REVALIDATE))
        .streaming(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The cells' definition: the record's JSON walked whole into a map of every leaf, nested
    /// objects as `parent_member`, each leaf's cell as [`scalar`] writes it.
    fn flatten(record: &Json) -> BTreeMap<String, String> {
        fn walk(prefix: &str, value: &Json, out: &mut BTreeMap<String, String>) {
            match value {
                Json::Object(map) => {
                    for (key, value) in map {
                        let name = if prefix.is_empty() {
                            key.clone()
                        } else {
                            format!("{prefix}_{key}")
                        };
                        walk(&name, value, out);
                    }
                }
                other => {
                    out.insert(prefix.to_owned(), scalar(other));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk("", record, &mut out);
        out
    }

    /// What [`flatten`] gives `column`, or the record's member `column` as JSON text.
    fn flattened_cell(record: &Json, column: &str) -> String {
        match flatten(record).get(column) {
            Some(cell) => cell.clone(),
            None => record.get(column).map(Json::to_string).unwrap_or_default(),
        }
    }

    fn cells_of<R: Serialize>(record: &R, columns: &[&str]) -> Vec<String> {
        let columns = cells::Columns::new(columns);
        let mut row = cells::Row::new(&columns);
        row.fill(record).expect("cells").to_vec()
    }

    #[test]
    fn flattens_nested_objects_lists_and_rankings() {
        let columns = [
            "address_city",
            "address_province",
            "tags",
            "rankings",
            "employees",
            "in_mind",
            "missing",
        ];
        let cells = cells_of(
            &json!({
                "name": "Politecnico di Milano",
                "address": {"city": "Milano", "province": null},
                "tags": ["a", "b"],
                "rankings": [
                    {"year": 2019, "area": "natural_sciences", "rank": 124, "source": "QS"},
                    {"area": "engineering_and_technology", "rank": 16, "source": "QS", "year": 2019}
                ],
                "employees": null,
                "in_mind": true
            }),
            &columns,
        );
        assert_eq!(
            cells,
            [
                "Milano",
                "",
                "a;b",
                "natural_sciences:124:QS:2019;engineering_and_technology:16:QS:2019",
                "",
                "true",
                ""
            ]
        );
    }

    /// The kinds of member the records have, written straight and through their JSON.
    #[test]
    fn a_typed_record_has_the_cells_of_its_json() {
        #[derive(Serialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Biotech,
        }
        #[derive(Serialize)]
        struct Ranking {
            year: i32,
            area: &'static str,
            rank: u32,
        }
        #[derive(Serialize)]
        struct Address {
            city: String,
            province: Option<String>,
            lat: f64,
        }
        #[derive(Serialize)]
        struct Record {
            id: uuid::Uuid,
            kind: Kind,
            name: String,
            address: Address,
            rankings: Vec<Ranking>,
            tags: Vec<String>,
            employees: Option<i64>,
            in_mind: bool,
            updated_at: chrono::DateTime<chrono::Utc>,
            changes: serde_json::Map<String, Json>,
            #[serde(flatten)]
            extra: BTreeMap<String, Json>,
        }
        let record = Record {
            id: uuid::Uuid::from_u128(7),
            kind: Kind::Biotech,
            name: "Farma, \"Bio\"".into(),
            address: Address {
                city: "Milano".into(),
                province: None,
                lat: 45.4642,
            },
            rankings: vec![Ranking {
                year: 2019,
                area: "natural_sciences",
                rank: 124,
            }],
            tags: vec!["a".into(), "b".into()],
            employees: Some(12),
            in_mind: false,
            updated_at: chrono::DateTime::from_timestamp(1_700_000_000, 5_000).expect("time"),
            changes: json!({"name": {"from": "A", "to": "B"}})
                .as_object()
                .cloned()
                .expect("object"),
            extra: [("website".to_owned(), json!("https://example.org"))].into(),
        };
        let columns = [
            "id",
            "kind",
            "name",
            "address_city",
            "address_province",
            "address_lat",
            "rankings",
            "tags",
            "employees",
            "in_mind",
            "updated_at",
            "changes",
            "website",
        ];
        let json = serde_json::to_value(&record).expect("json");
        let expected: Vec<String> = columns.iter().map(|c| flattened_cell(&json, c)).collect();
        assert_eq!(cells_of(&record, &columns), expected);
        assert_eq!(expected[11], r#"{"name":{"from":"A","to":"B"}}"#);
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(2000))]

        /// Member names built of `a`, `b` and `_` so that many paths flatten to one name;
        /// records of different shapes one after another through one row's cells, as an
        /// export's batch goes.
        #[test]
        fn the_cells_are_what_flattening_the_record_gives_its_columns(
            records in proptest::collection::vec(json(), 1..5),
            columns in proptest::collection::btree_set("[ab_]{0,6}", 1..6),
        ) {
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            let index = cells::Columns::new(&columns);
            let mut row = cells::Row::new(&index);
            for record in &records {
                let expected: Vec<String> =
                    columns.iter().map(|c| flattened_cell(record, c)).collect();
                proptest::prop_assert_eq!(row.fill(record).expect("cells"), &expected[..]);
            }
        }
    }

    /// Any JSON, a few levels deep, over member names that collide when flattened.
    fn json() -> impl proptest::strategy::Strategy<Value = Json> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            2 => Just(Json::Null),
            1 => any::<bool>().prop_map(Json::Bool),
            1 => any::<i64>().prop_map(Json::from),
            1 => "[a-z,\"]{0,3}".prop_map(Json::String),
        ];
        leaf.prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                1 => proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                3 => proptest::collection::btree_map("[ab_]{0,3}", inner, 0..5)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn quotes_cells_as_rfc_4180_says() {
        #[derive(Serialize)]
        struct Row {
            name: &'static str,
        }
        let bytes = csv_bytes(
            &[Row {
                name: "Farma, \"Bio\"\nS.p.A.",
            }],
            &["name"],
            true,
        )
        .expect("csv");
        assert_eq!(&bytes[..], b"name\r\n\"Farma, \"\"Bio\"\"\nS.p.A.\"\r\n");
    }
}
