//! An HTTP proxy that only notes what it is asked: the first line of each request (`CONNECT host:443
//! HTTP/1.1` for HTTPS, `GET http://… HTTP/1.1` for plain HTTP). A plain GET is answered with an Azure
//! managed-identity token (as the instance metadata service answers), anything else with `502`. A client
//! built with this proxy shows which requests a component sent over that client and not another.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub struct RecordingProxy {
    pub url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let lines = Arc::new(Mutex::new(Vec::new()));
        let noted = Arc::clone(&lines);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let noted = Arc::clone(&noted);
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    let mut first = String::new();
                    if stream.read_line(&mut first).await.is_err() {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        match stream.read_line(&mut header).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) if header == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let first = first.trim_end().to_owned();
                    let answer = if first.starts_with("GET http://") {
                        let expires = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
                        let body = serde_json::json!({
                            "access_token": "a-token-from-the-recording-proxy",
                            "expires_on": expires.to_string(),
                            "expires_in": "3600",
                            "token_type": "Bearer",
                            "resource": "https://storage.azure.com",
                        })
                        .to_string();
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_owned()
                    };
                    noted.lock().unwrap().push(first);
                    let _ = stream.get_mut().write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { url, lines }
    }

    /// A client that sends everything through this proxy.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(&self.url).unwrap())
            .build()
            .unwrap()
    }

    /// The first line of every request so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}
