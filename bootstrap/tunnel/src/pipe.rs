//! Carries a byte stream over a websocket as binary messages, both ways,
//! until either side ends.

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const CHUNK: usize = 32 * 1024;

/// Pipes `stream` through `ws`; returns when either side closes.
pub async fn pipe<S, T>(ws: WebSocketStream<S>, stream: T)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws_out, mut ws_in) = ws.split();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let outbound = async {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws_out
                        .send(Message::Binary(buffer[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = ws_out.send(Message::Close(None)).await;
    };
    let inbound = async {
        while let Some(Ok(message)) = ws_in.next().await {
            match message {
                Message::Binary(bytes) if writer.write_all(&bytes).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = writer.shutdown().await;
    };
    tokio::select! {
        _ = outbound => {}
        _ = inbound => {}
    }
}
