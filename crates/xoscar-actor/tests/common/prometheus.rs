//! Reading a Prometheus endpoint the way a scraper does.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the endpoint at `address` answers to `request` (raw HTTP).
pub async fn scrape(address: std::net::SocketAddr, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

/// The value of the sample whose line starts with `series` (name and labels, as rendered).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}
