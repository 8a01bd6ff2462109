//! A faithful local stand-in for the Databricks account and workspace APIs uc-access calls.
//!
//! Used by the local run, the tests and the benchmarks; production code never depends on it. One stand-in
//! is one account plus one workspace with one metastore, served from one base URL, which also serves
//! the Microsoft Graph calls uc-access makes (under `/v1.0/`, [`graph`]) for the tenant in the seed.

mod admin;
mod auth;
mod catalog;
mod error;
mod faults;
mod grants;
pub mod graph;
mod identity;
mod listener;
mod model;
pub mod privileges;
mod recording;
mod scim;
mod scim_filter;
mod seed;
mod sharing;
mod state;

use std::io;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::ApiError;
pub use faults::{Fault, FaultKind};
pub use listener::ConnHandle;
pub use model::{ACCOUNT_USERS, CreatedIdentity};
pub use recording::RecordedRequest;
pub use seed::{
    EntraIdentity, Seed, SeedGrant, SeedGroup, SeedSecurable, SeedServicePrincipal, SeedUser, demo,
};
pub use state::StandInState;

/// Entry point: `StandIn::builder().seed(Seed::demo()).start(addr).await`.
#[derive(Debug)]
pub struct StandIn;

/// Configures a stand-in before it starts.
#[derive(Debug)]
pub struct StandInBuilder {
    seed: Seed,
}

impl StandIn {
    pub fn builder() -> StandInBuilder {
        StandInBuilder { seed: Seed::demo() }
    }

    /// The whole app for a given state, for in-process `oneshot` tests.
    pub fn router(state: StandInState) -> Router {
        let api = Router::new()
            .route(
                "/api/2.1/unity-catalog/permissions/{securable_type}/{full_name}",
                get(grants::get_permissions).patch(grants::update_permissions),
            )
            .route(
                "/api/2.1/unity-catalog/effective-permissions/{securable_type}/{full_name}",
                get(grants::get_effective),
            )
            .route(
                "/api/2.1/unity-catalog/catalogs/{name}",
                get(catalog::get_catalog),
            )
            .route(
                "/api/2.1/unity-catalog/schemas/{full_name}",
                get(catalog::get_schema),
            )
            .route(
                "/api/2.1/unity-catalog/tables/{full_name}",
                get(catalog::get_table),
            )
            .route("/api/2.1/unity-catalog/shares", post(sharing::create_share))
            .route(
                "/api/2.1/unity-catalog/shares/{name}",
                get(sharing::get_share)
                    .patch(sharing::update_share)
                    .delete(sharing::delete_share),
            )
            .route(
                "/api/2.1/unity-catalog/shares/{name}/permissions",
                get(sharing::get_share_permissions).patch(sharing::update_share_permissions),
            )
            .route(
                "/api/2.1/unity-catalog/recipients",
                post(sharing::create_recipient),
            )
            .route(
                "/api/2.1/unity-catalog/recipients/{name}",
                get(sharing::get_recipient)
                    .patch(sharing::update_recipient)
                    .delete(sharing::delete_recipient),
            )
            .route(
                "/api/2.1/unity-catalog/recipients/{name}/rotate-token",
                post(sharing::rotate_token),
            )
            .route(
                "/api/2.0/accounts/{account_id}/scim/v2/{kind}",
                get(scim::account_list),
            )
            .route(
                "/api/2.0/accounts/{account_id}/scim/v2/{kind}/{id}",
                get(scim::account_get),
            )
            .route("/api/2.0/preview/scim/v2/Me", get(scim::workspace_me))
            .route("/api/2.0/preview/scim/v2/{kind}", get(scim::workspace_list))
            .route(
                "/api/2.0/preview/scim/v2/{kind}/{id}",
                get(scim::workspace_get),
            )
            .route(
                "/api/2.0/identity/accounts/{account_id}/{kind}/resolve-by-external-id",
                post(identity::account_resolve),
            )
            .route(
                "/api/2.0/identity/{kind}/resolve-by-external-id",
                post(identity::workspace_resolve),
            )
            .route_layer(middleware::from_fn_with_state(
                state.clone(),
                auth::bearer_layer,
            ));
        let graph = Router::new()
            .route("/v1.0/users/{id}", get(graph::get_user))
            .route(
                "/v1.0/servicePrincipals/{id}",
                get(graph::get_service_principal),
            )
            .route("/v1.0/groups/{id}", get(graph::get_group))
            .route(
                "/v1.0/groups/{id}/transitiveMembers",
                get(graph::transitive_members_of),
            )
            .route(
                "/v1.0/directoryObjects/{id}/checkMemberGroups",
                post(graph::check_member_groups),
            )
            .route_layer(middleware::from_fn(graph::graph_bearer));
        let open = Router::new()
            .route(
                "/.well-known/databricks-config",
                get(|| async { StatusCode::NOT_FOUND }),
            )
            .route(
                "/oidc/.well-known/oauth-authorization-server",
                get(auth::workspace_discovery),
            )
            .route(
                "/oidc/accounts/{account_id}/.well-known/oauth-authorization-server",
                get(auth::account_discovery),
            )
            .route(
                "/api/2.1/unity-catalog/public/data_sharing_activation/{token}",
                get(sharing::retrieve_token),
            )
            .route("/oidc/v1/token", post(auth::workspace_token))
            .route(
                "/oidc/accounts/{account_id}/v1/token",
                post(auth::account_token),
            );
        Router::new()
            .merge(api)
            .merge(graph)
            .merge(open)
            .merge(admin::routes())
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(
                state.clone(),
                faults::fault_layer,
            ))
            .layer(middleware::from_fn_with_state(
                state.clone(),
                recording::record_layer,
            ))
            .with_state(state)
    }
}

async fn not_found(request: Request) -> impl IntoResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!(
            "No API found for '{} {}'",
            request.method(),
            request.uri().path()
        ),
    )
}

impl StandInBuilder {
    /// Starts from this seed instead of [`Seed::demo`].
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = seed;
        self
    }

    /// The state without a server, for [`StandIn::router`].
    pub fn state(self) -> StandInState {
        StandInState::new(self.seed)
    }

    /// Binds `addr` (port 0 for any free port) and serves in the background until shut down or dropped.
    pub async fn start(self, addr: SocketAddr) -> io::Result<RunningStandIn> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let state = StandInState::new(self.seed);
        let app = StandIn::router(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(
                listener::KillableListener(listener),
                app.into_make_service_with_connect_info::<ConnHandle>(),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
        });
        Ok(RunningStandIn {
            base_url: format!("http://{local}"),
            local_addr: local,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// A stand-in serving on a port. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningStandIn {
    base_url: String,
    local_addr: SocketAddr,
    state: StandInState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RunningStandIn {
    /// `http://127.0.0.1:PORT`: both the workspace host and the account host.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The handle for faults, records and grant inspection.
    pub fn state(&self) -> &StandInState {
        &self.state
    }

    /// Shorthand for `state().requests()`.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Stops accepting, finishes in-flight requests, and waits for the server to end.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningStandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves a stand-in on `addr` until Ctrl-C (for `uc-access-dev standin --port N`).
pub async fn serve_standin(addr: SocketAddr, seed: Seed) -> io::Result<()> {
    let running = StandIn::builder().seed(seed).start(addr).await?;
    tracing::info!(
        base_url = running.base_url(),
        "Databricks stand-in listening"
    );
    println!("Databricks stand-in listening on {}", running.base_url());
    tokio::signal::ctrl_c().await?;
    running.shutdown().await
}
