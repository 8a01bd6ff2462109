//! A running stand-in and our clients wired to it, as the local run wires them.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use uc_access::databricks::{
    DatabricksAuth, DatabricksClients, Deadline, RetryPolicy, StaticToken, Transport,
};
use uc_access::standin::{RunningStandIn, Seed, StandIn, demo};
use url::Url;

pub struct World {
    pub standin: RunningStandIn,
    pub clients: DatabricksClients,
}

impl World {
    pub async fn start(seed: Seed, resolve_by_external_id: bool) -> Self {
        let standin = StandIn::builder()
            .seed(seed)
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let auth = Arc::new(DatabricksAuth::shared(Arc::new(StaticToken::new(
            SecretString::from(demo::PRODUCT_TOKEN),
        ))));
        let retry = RetryPolicy {
            max_attempts: 4,
            ..RetryPolicy::default()
        };
        let transport = Transport::new(Transport::default_http(), retry, Duration::from_secs(5));
        let clients = DatabricksClients::new(
            transport,
            auth,
            Url::parse(standin.base_url()).unwrap(),
            demo::ACCOUNT_ID.to_owned(),
            resolve_by_external_id,
        );
        Self { standin, clients }
    }

    pub fn workspace(&self) -> Url {
        Url::parse(self.standin.base_url()).unwrap()
    }
}

pub fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}
