//! `Accept: text/csv` on lists: every matching row, streamed in keyset batches.
//!
//! Each batch is one short `db::run` (a connection is held only while a batch loads), so a slow
//! download holds no connection or blocking thread between batches, and memory stays at one
//! batch whatever the export's size. Concurrent exports per process are capped (429 beyond).

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

/// Rows per batch query.
const BATCH: u32 = 1000;

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

/// Flattens a record to its CSV cells: nested objects as `parent_member`, lists joined with
/// `;`, objects inside lists as their members' values joined with `:` (in member-name order,
/// e.g. a ranking as `area:rank:source:year`), null as an empty cell.
pub fn flatten(record: &Json) -> BTreeMap<String, String> {
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
    for row in rows {
        let record = serde_json::to_value(row).map_err(ApiError::internal)?;
        let cells = flatten(&record);
        // A column naming an object of free-form members (an audit event's `changes`) carries
        // that object as JSON text.
        let cell = |column: &str| match cells.get(column) {
            Some(cell) => cell.clone(),
            None => record.get(column).map(Json::to_string).unwrap_or_default(),
        };
        writer
            .write_record(columns.iter().map(|c| cell(c)))
            .map_err(ApiError::internal)?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(e.to_string()))
}

struct Export<F> {
    pool: PgPool,
    reader: db::Reader,
    query: ListQuery,
    cursor: Option<String>,
    remaining: Option<u64>,
    header: bool,
    done: bool,
    convert: F,
    columns: &'static [&'static str],
    _permit: OwnedSemaphorePermit,
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
        convert,
        columns,
        _permit: permit,
    };
    let stream = futures_util::stream::try_unfold(state, |mut st| async move {
        if st.done {
            return Ok::<_, ApiError>(None);
        }
        let batch = st.remaining.map_or(BATCH, |r| {
            u32::try_from(r.min(u64::from(BATCH))).unwrap_or(BATCH)
        });
        let (columns, header) = (st.columns, st.header);
        let (bytes, count, next) = if batch == 0 {
            (csv_bytes::<R>(&[], columns, header)?, 0, None)
        } else {
            let mut query = st.query.clone();
            query.limit = Some(batch);
            let cursor = st.cursor.clone();
            let convert = st.convert.clone();
            // Serialising the batch happens on the blocking thread too, off the async workers.
            db::read(&st.pool, &st.reader, move |conn, _| {
                let page = query.load::<T>(conn, cursor.as_deref(), false)?;
                let rows = convert(conn, page.data)?;
                Ok((
                    csv_bytes(&rows, columns, header)?,
                    rows.len(),
                    page.next_cursor,
                ))
            })
            .await
            .inspect_err(|e| tracing::error!(error = %e, "CSV export failed mid-stream"))?
        };
        st.header = false;
        if let Some(r) = st.remaining.as_mut() {
            *r = r.saturating_sub(count as u64);
        }
        st.done = next.is_none() || st.remaining == Some(0);
        st.cursor = next;
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

    #[test]
    fn flattens_nested_objects_lists_and_rankings() {
        let cells = flatten(&json!({
            "name": "Politecnico di Milano",
            "address": {"city": "Milano", "province": null},
            "tags": ["a", "b"],
            "rankings": [
                {"year": 2019, "area": "natural_sciences", "rank": 124, "source": "QS"},
                {"area": "engineering_and_technology", "rank": 16, "source": "QS", "year": 2019}
            ],
            "employees": null,
            "in_mind": true
        }));
        assert_eq!(cells["address_city"], "Milano");
        assert_eq!(cells["address_province"], "");
        assert_eq!(cells["tags"], "a;b");
        assert_eq!(
            cells["rankings"],
            "natural_sciences:124:QS:2019;engineering_and_technology:16:QS:2019"
        );
        assert_eq!(cells["employees"], "");
        assert_eq!(cells["in_mind"], "true");
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
