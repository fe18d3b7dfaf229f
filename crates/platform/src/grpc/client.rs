//! The client side of a service calling another one on behalf of tenants.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The API keys a service holds to call another service on behalf of each tenant (the
/// reconcilers' `[reconciler] service_keys`: tenant id -> `afk_…` key of role `service`).
/// Builds requests that carry the tenant's key as `authorization: Bearer …`. Cheap to clone;
/// `Debug` names the tenants, never the keys.
#[derive(Clone, Default)]
pub struct TenantKeys(Arc<BTreeMap<String, String>>);

impl TenantKeys {
    pub fn new(keys: HashMap<String, String>) -> TenantKeys {
        TenantKeys(Arc::new(keys.into_iter().collect()))
    }

    /// The tenants with a key, sorted.
    pub fn tenants(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// `message` as a request authenticated with `tenant`'s key; an error names the tenant
    /// when it has no key (or the key cannot be a header value).
    pub fn request<T>(&self, tenant: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
        let key = self
            .0
            .get(tenant)
            .ok_or_else(|| anyhow::anyhow!("no service key for tenant {tenant}"))?;
        let value = format!("Bearer {key}").parse().map_err(|_| {
            anyhow::anyhow!("the service key of tenant {tenant} is not a header value")
        })?;
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

/// Every item of a paged list call: `page(token)` fetches one page (starting with an empty
/// token) and answers its items and the next page token, empty after the last page.
pub async fn all_pages<T, F, Fut>(mut page: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Vec<T>, String)>>,
{
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = page(token).await?;
        out.extend(items);
        if next.is_empty() {
            return Ok(out);
        }
        token = next;
    }
}

/// A call's answer, with NOT_FOUND as None (another tenant's object answers NOT_FOUND too).
pub fn found<T>(answer: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<Option<T>> {
    match answer {
        Ok(response) => Ok(Some(response.into_inner())),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(status.into()),
    }
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKeys")
            .field("tenants", &self.0.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn all_pages_follows_tokens_and_found_maps_not_found() {
        let pages = all_pages(|token: String| async move {
            Ok(match token.as_str() {
                "" => (vec![1, 2], "p2".to_string()),
                "p2" => (vec![3], String::new()),
                other => anyhow::bail!("unexpected token {other}"),
            })
        })
        .await
        .unwrap();
        assert_eq!(pages, [1, 2, 3]);
        assert_eq!(found(Ok(tonic::Response::new(7))).unwrap(), Some(7));
        assert_eq!(
            found::<i32>(Err(tonic::Status::not_found("claim"))).unwrap(),
            None
        );
        assert!(found::<i32>(Err(tonic::Status::internal("x"))).is_err());
    }

    #[test]
    fn requests_carry_the_tenants_key_and_debug_hides_it() {
        let keys = TenantKeys::new(HashMap::from([
            ("t2".to_string(), "afk_two".to_string()),
            ("t1".to_string(), "afk_one".to_string()),
        ]));
        assert_eq!(keys.tenants(), ["t1", "t2"]);
        let request = keys.request("t2", ()).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer afk_two"
        );
        let err = keys.request("t3", ()).unwrap_err().to_string();
        assert!(err.contains("t3"), "{err}");
        let debug = format!("{keys:?}");
        assert!(debug.contains("t1") && !debug.contains("afk_"), "{debug}");
    }
}
