//! TEMPORARY (replaced by the store's Postgres support at merge).
use crate::pg::PgTarget;
use postgres::Client;

pub fn pg_client(url: &str, schema: &str) -> Result<Client, super::StoreError> {
    let t = PgTarget::parse(url).map_err(|e| super::StoreError::NotFound(e.to_string()))?;
    let mut c = t
        .connect()
        .map_err(|e| super::StoreError::NotFound(e.to_string()))?;
    let e = |e: postgres::Error| super::StoreError::NotFound(format!("{e}: {:?}", e.as_db_error()));
    let mut tx = c.transaction().map_err(e)?;
    pg_write_lock(&mut tx, schema).map_err(e)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET LOCAL search_path TO \"{schema}\";"
    ))
    .map_err(e)?;
    let have: bool = tx
        .query_one("SELECT to_regclass('pipeline_jobs') IS NOT NULL", &[])
        .map_err(e)?
        .get(0);
    if !have {
        tx.batch_execute(include_str!("../../migrations/postgres/0002_pipeline.sql"))
            .map_err(e)?;
    }
    tx.commit().map_err(e)?;
    c.batch_execute(&format!("SET search_path TO \"{schema}\";"))
        .map_err(e)?;
    Ok(c)
}

pub fn pg_write_lock(
    c: &mut impl postgres::GenericClient,
    schema: &str,
) -> Result<(), postgres::Error> {
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtext('contimg:' || $1))",
        &[&schema],
    )?;
    Ok(())
}
