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
