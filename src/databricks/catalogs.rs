//! Unity Catalog object reads the doctor needs: a catalog by name, with its owner.

use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use super::auth::DatabricksAuth;
use super::error::DatabricksError;
use super::http::{Call, Transport};
use super::retry::Deadline;
use super::uc_paths::UcPath;
use crate::domain::{Name, Securable};

/// What `GET /api/2.1/unity-catalog/catalogs/{name}` tells about a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CatalogInfo {
    pub name: String,
    /// The owning principal (user name, group name or application id); absent when we may not see it.
    #[serde(default)]
    pub owner: Option<String>,
}

/// Catalog reads on any workspace.
#[derive(Debug, Clone)]
pub struct CatalogsClient {
    transport: Transport,
    auth: Arc<DatabricksAuth>,
}

impl CatalogsClient {
    pub fn new(transport: Transport, auth: Arc<DatabricksAuth>) -> Self {
        Self { transport, auth }
    }

    /// The catalog `name` in `workspace`'s metastore.
    #[tracing::instrument(skip_all, fields(catalog = %name))]
    pub async fn get(
        &self,
        workspace: &Url,
        name: &Name,
        deadline: Deadline,
    ) -> Result<CatalogInfo, DatabricksError> {
        let url = UcPath::Catalog(name.as_str()).url(workspace);
        let tokens = self.auth.workspace(workspace);
        self.transport
            .json(&*tokens, &Call::get(url), deadline)
            .await
            .map_err(|e| e.about_securable(&Securable::catalog(name.clone())))
    }
}
