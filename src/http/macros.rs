//! The macros of the resources: `record_handlers!` writes a record's thin handler shells
//! (a macro because OpenAPI annotations need each path as a literal; the behaviour lives in the
//! pipeline's generic functions; `pipeline_handler!` writes each shell),
//! `record_table_storage!` the storage hooks of a record in a table of its own,
//! `organisation_csv_columns!` the CSV columns of an organisation kind.

/// A thin handler over the pipeline: the attributes given (its doc and `#[utoipa::path]`), the
/// [`Call`](crate::http::machinery::record::Call) and the extractors named, and one call of
/// the pipeline's `$op` with the arguments given.
macro_rules! pipeline_handler {
    ($(#[$attr:meta])* $name:ident($($arg:ident: $ty:ty),*) => $op:ident::<$resource:ty>($($pass:expr),*)) => {
        $(#[$attr])*
        pub async fn $name(
            call: $crate::http::machinery::record::Call,
            $($arg: $ty),*
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::http::machinery::record::$op::<$resource>(&call, $($pass),*).await
        }
    };
}

/// The operations every record shares (create, read, update, archive, restore, history), as
/// thin handlers over `record`'s generic functions. A macro only because
/// OpenAPI annotations need each path as a literal; the behaviour lives in the functions.
macro_rules! record_handlers {
    (
        resource: $resource:ty,
        tag: $tag:literal,
        collection: $collection:literal,
        item: $item:literal,
        restore: $restore_path:literal,
        history: $history_path:literal,
        response: $response:ty,
        create_body: $create_body:ty,
        patch_body: $patch_body:ty,
        patch_description: $patch_description:literal,
        summaries: ($s_create:literal, $s_get:literal, $s_update:literal, $s_archive:literal, $s_restore:literal, $s_history:literal),
        handlers: ($create:ident, $get:ident, $update:ident, $archive:ident, $restore:ident, $history:ident) $(,)?
    ) => {
        pipeline_handler! {
            #[doc = $s_create]
            #[utoipa::path(
                post, path = $collection, tag = $tag,
                summary = $s_create,
                request_body(content = $create_body, content_type = "application/json"),
                security(("bearer" = [])),
                responses(
                    (status = 201, description = "Created", body = $response,
                     headers(("Location" = String, description = "The new record's URL"),
                             ("ETag" = String, description = "`\"<version>\"`"))),
                    (status = 409, response = $crate::http::machinery::problems::Conflict),
                )
            )]
            $create(body: actix_web::web::Bytes) => create::<$resource>((), body)
        }

        pipeline_handler! {
            #[doc = $s_get]
            #[utoipa::path(
                get, path = $item, tag = $tag,
                summary = $s_get,
                description = "Honours `If-None-Match` (304).",
                params(("id" = uuid::Uuid, Path, description = "Record id"), $crate::http::machinery::record::GetParams),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "The record", body = $response,
                     headers(("ETag" = String, description = "`\"<version>\"`"))),
                    (status = 304, description = "Not modified since the ETag in If-None-Match"),
                )
            )]
            $get(
                id: actix_web::web::Path<uuid::Uuid>,
                query: actix_web::web::Query<$crate::http::machinery::record::GetParams>
            ) => get::<$resource>((), id.into_inner(), query.into_inner())
        }

        pipeline_handler! {
            #[doc = $s_update]
            #[utoipa::path(
                patch, path = $item, tag = $tag,
                summary = $s_update,
                description = $patch_description,
                params(("id" = uuid::Uuid, Path, description = "Record id"), $crate::http::machinery::etag::IfMatch),
                request_body(content(($patch_body = "application/merge-patch+json"), ($patch_body = "application/json"))),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "Updated", body = $response,
                     headers(("ETag" = String, description = "`\"<version>\"`"))),
                    (status = 409, response = $crate::http::machinery::problems::Conflict),
                )
            )]
            $update(id: actix_web::web::Path<uuid::Uuid>, body: actix_web::web::Bytes)
                => update::<$resource>((), id.into_inner(), body)
        }

        pipeline_handler! {
            #[doc = $s_archive]
            #[utoipa::path(
                delete, path = $item, tag = $tag,
                summary = $s_archive,
                description = "Archives: the record leaves lists and reads until restored. Requires If-Match.",
                params(("id" = uuid::Uuid, Path, description = "Record id"), $crate::http::machinery::etag::IfMatch),
                security(("bearer" = [])),
                responses(
                    (status = 204, description = "Archived",
                     headers(("ETag" = String, description = "The archived version's ETag"))),
                )
            )]
            $archive(id: actix_web::web::Path<uuid::Uuid>) => remove::<$resource>((), id.into_inner())
        }

        pipeline_handler! {
            #[doc = $s_restore]
            #[utoipa::path(
                post, path = $restore_path, tag = $tag,
                summary = $s_restore,
                description = "Requires If-Match (the archived version's ETag).",
                params(("id" = uuid::Uuid, Path, description = "Record id"), $crate::http::machinery::etag::IfMatch),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "Restored", body = $response,
                     headers(("ETag" = String, description = "`\"<version>\"`"))),
                    (status = 409, response = $crate::http::machinery::problems::Conflict),
                )
            )]
            $restore(id: actix_web::web::Path<uuid::Uuid>) => restore::<$resource>((), id.into_inner())
        }

        pipeline_handler! {
            #[doc = $s_history]
            #[utoipa::path(
                get, path = $history_path, tag = $tag,
                summary = $s_history,
                description = "Every change: who, when, which request, the fields before and after; its own and those of the links that name it (its goal links, partners and participants), each link event naming the link's ends in `related`.",
                params(("id" = uuid::Uuid, Path, description = "Record id"),
                       $crate::http::machinery::list::ListRequest<$crate::http::machinery::record::History, $crate::http::machinery::list::NoFilters>),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "A page of audit events (or, with `Accept: text/csv`, all of them as CSV)",
                     content(($crate::http::machinery::list::PageResponse<$crate::http::machinery::record::AuditEvent> = "application/json"),
                             (String = "text/csv")),
                     headers(("ETag" = String, description = "Changes whenever the registry changes"))),
                    (status = 304, description = "Nothing changed since the ETag in If-None-Match"),
                    (status = 429, response = $crate::http::machinery::problems::TooManyRequests),
                )
            )]
            $history(
                id: actix_web::web::Path<uuid::Uuid>,
                query: $crate::http::machinery::list::ListRequest<$crate::http::machinery::record::History, $crate::http::machinery::list::NoFilters>
            ) => history::<$resource>((), id.into_inner(), query.into_parts().0)
        }
    };
}

/// The storage hooks of a record kept in a versioned, archivable table of its own (goals,
/// activities; the organisation kinds share theirs through `OrgResource`): its URL, and the
/// lock, insert, update and archive switch, through the calling module's `model` (the kind's
/// `insert`/`update`) and `rows` (`models::record`).
macro_rules! record_table_storage {
    ($table:literal, $write:ty) => {
        fn location((): (), id: uuid::Uuid) -> String {
            $crate::http::machinery::record::top_level($table, id)
        }

        fn lock(
            conn: &mut diesel::PgConnection,
            (): (),
            id: uuid::Uuid,
        ) -> Result<$crate::http::machinery::record::Locked, $crate::error::ApiError> {
            let (version, archived_at) =
                rows::lock(conn, rows::Archivable::new($table), Self::ENTITY, id)?;
            Ok($crate::http::machinery::record::Locked {
                version,
                archived_at,
            })
        }

        fn insert(
            conn: &mut diesel::PgConnection,
            (): (),
            write: &$write,
        ) -> Result<uuid::Uuid, $crate::error::ApiError> {
            Ok(model::insert(conn, write)?)
        }

        fn update(
            conn: &mut diesel::PgConnection,
            id: uuid::Uuid,
            expected: i64,
            write: &$write,
        ) -> Result<(), $crate::error::ApiError> {
            Ok(model::update(conn, id, expected, write)?)
        }

        fn set_archived(
            conn: &mut diesel::PgConnection,
            id: uuid::Uuid,
            expected: i64,
            archived_at: Option<chrono::DateTime<chrono::Utc>>,
        ) -> Result<i64, $crate::error::ApiError> {
            Ok(rows::set_archived(
                conn,
                rows::Archivable::new($table),
                id,
                expected,
                archived_at,
            )?)
        }
    };
}

/// The CSV columns of an organisation kind: the shared members (the cross-kind view's columns)
/// around the kind's own, in the response's order.
macro_rules! organisation_csv_columns {
    ($($own:literal),* $(,)?) => {
        &[
            "id", "kind", "name", "legal_name", "description", "website", "email", "phone",
            "address_street", "address_city", "address_postal_code", "address_province",
            "address_country", "tags", "in_mind",
            $($own,)*
            "created_at", "updated_at", "version", "archived_at",
        ]
    };
}
