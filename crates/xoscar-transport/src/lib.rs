//! Addresses, listeners and framed duplex channels for xoscar-rs, over TCP, Unix domain
//! sockets and in-process queues.
//!
//! Place in the stack: `xoscar-wire` < **`xoscar-transport`** < `xoscar-pool` < `xoscar-router`
//! < `xoscar-actor` < `xoscar`. It sends [`xoscar_wire::Frame`]s and receives
//! [`xoscar_wire::ReceivedFrame`]s; it knows nothing of requests or actors.
//!
//! - [`listen`] an [`Address`], [`Listener::accept`] dials, finish each with
//!   [`Incoming::handshake`] in its own task;
//! - [`connect`] to an address (dial + handshake within a connect timeout);
//! - both give a [`Channel`] that sends and receives frames, and splits into a
//!   [`FrameReader`] and a [`FrameWriter`].
//!
//! Each transport sits behind a cargo feature, all on by default: `tcp` (`TCP_NODELAY`,
//! keepalive), `uds` (stale socket files handled), `inproc` (frames move as values, no sockets,
//! no encoding). An address whose transport is compiled out is
//! [`TransportError::Unsupported`].
//!
//! ```
//! # #[cfg(not(feature = "tcp"))] fn main() {}
//! # #[cfg(feature = "tcp")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), xoscar_transport::TransportError> {
//! use bytes::Bytes;
//! use xoscar_transport::{Address, TransportConfig, connect, listen};
//! use xoscar_wire::Frame;
//!
//! let config = TransportConfig::default();
//! let mut listener = listen(&"127.0.0.1:0".parse()?, &config).await?;
//! let address = listener.local_addr().clone();
//! tokio::spawn(async move {
//!     let mut channel = listener.accept().await?.handshake().await?;
//!     while let Some(received) = channel.recv().await? {
//!         channel.send(received.into_frame()).await?; // echo
//!     }
//!     Ok::<_, xoscar_transport::TransportError>(())
//! });
//! let mut channel = connect(&address, &config).await?;
//! let frame = Frame::request(1, Bytes::from_static(b"hello"), vec![Bytes::from_static(b"payload")]);
//! channel.send(frame.clone()).await?;
//! // A frame is received as one buffer, read in place (see `xoscar_wire::ReceivedFrame`).
//! let echoed = channel.recv().await?.expect("an echo");
//! assert_eq!(echoed.request().map(|request| request.id), Some(1));
//! assert_eq!(echoed.header(), b"hello");
//! assert_eq!(echoed.into_frame(), frame);
//! # Ok(())
//! # }
//! ```

#[cfg(not(any(feature = "tcp", feature = "uds", feature = "inproc")))]
compile_error!("enable at least one transport feature of xoscar-transport: tcp, uds or inproc");

mod activity;
mod address;
mod channel;
mod config;
mod error;
#[cfg(feature = "inproc")]
mod inproc;
mod listener;
mod process;
#[cfg(any(feature = "tcp", feature = "uds"))]
mod stream;
#[cfg(feature = "tcp")]
mod tcp;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "uds")]
mod unix;

pub use activity::Activity;
pub use address::{Address, AddressError, Host};
pub use channel::{Channel, FrameReader, FrameWriter};
pub use config::{Keepalive, TransportConfig};
pub use error::TransportError;
pub use listener::{Incoming, Listener, connect, listen};
#[cfg(feature = "tls")]
pub use tls::{Tls, TlsConfig, TlsError};
pub use xoscar_wire::{AuthToken, BadAuthToken};
