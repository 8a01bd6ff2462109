//! Starting a binary of this workspace as a child process and talking to it over blocking HTTP: shared
//! by the shipped binary's tests (tests/binary.rs) and the developer binary's (crates/dev/tests).

#![allow(dead_code)] // each test file uses a part

use std::net::TcpListener;
use std::process::Child;

/// A started binary, killed when dropped.
pub struct Handler {
    pub child: Child,
    pub base: String,
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn blocking_get(url: &str) -> Result<(u16, String), reqwest::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::get(url).await?;
        Ok((r.status().as_u16(), r.text().await?))
    })
}
