//! A ClientHello of our own, for what rustls will not speak: SSL 3.0,
//! TLS 1.0 and 1.1, and cipher suites nobody should accept. Only the
//! server's first answer is read (its ServerHello, or an alert): that says
//! which version and suite it chose, and no handshake is ever finished.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A protocol version, as the wire spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u16);

impl Version {
    pub const SSL3: Version = Version(0x0300);
    pub const TLS1_0: Version = Version(0x0301);
    pub const TLS1_1: Version = Version(0x0302);
    pub const TLS1_2: Version = Version(0x0303);
    pub const TLS1_3: Version = Version(0x0304);

    pub fn name(self) -> &'static str {
        match self {
            Version::SSL3 => "SSL 3.0",
            Version::TLS1_0 => "TLS 1.0",
            Version::TLS1_1 => "TLS 1.1",
            Version::TLS1_2 => "TLS 1.2",
            Version::TLS1_3 => "TLS 1.3",
            _ => "an unknown version",
        }
    }
}

/// What the server chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello {
    pub version: Version,
    pub suite: u16,
}

/// The server's answer to one ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accepted(ServerHello),
    /// An alert, a closed connection, or anything that is not a ServerHello.
    Refused,
}

/// Offers `version` with only `suites` to `address`, naming `server_name`
/// (SNI) when it is a DNS name. `Err` when no TCP connection was made.
pub async fn offer(
    address: &str,
    server_name: Option<&str>,
    version: Version,
    suites: &[u16],
    timeout: Duration,
) -> std::io::Result<Answer> {
    let mut stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let hello = client_hello(server_name, version, suites);
    let exchange = async {
        stream.write_all(&hello).await?;
        read_first_handshake(&mut stream).await
    };
    Ok(match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(Some(message))) => parse_server_hello(&message).map_or(Answer::Refused, Answer::Accepted),
        _ => Answer::Refused,
    })
}

/// The first handshake message's body (its type byte first), from as many
/// records as it spans; `None` for an alert or anything else.
async fn read_first_handshake(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    const MAX_MESSAGE: usize = 1 << 16;
    let mut message = Vec::new();
    loop {
        let mut header = [0u8; 5];
        stream.read_exact(&mut header).await?;
        if header[0] != 0x16 {
            return Ok(None);
        }
        let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let start = message.len();
        message.resize(start + length, 0);
        stream.read_exact(&mut message[start..]).await?;
        if message.len() >= 4 {
            let body = usize::from(message[1]) << 16 | usize::from(message[2]) << 8 | usize::from(message[3]);
            if message.len() >= 4 + body || message.len() > MAX_MESSAGE {
                return Ok(Some(message));
            }
        }
    }
}

/// The version and suite of a ServerHello (a TLS 1.3 one names its
/// version in `supported_versions`).
pub fn parse_server_hello(message: &[u8]) -> Option<ServerHello> {
    let mut reader = Reader(message);
    if reader.u8()? != 2 {
        return None;
    }
    reader.take(3)?;
    let mut version = Version(reader.u16()?);
    reader.take(32)?;
    let session_id = usize::from(reader.u8()?);
    reader.take(session_id)?;
    let suite = reader.u16()?;
    reader.u8()?;
    if let Some(length) = reader.u16() {
        let mut extensions = Reader(reader.take(usize::from(length))?);
        while let (Some(kind), Some(length)) = (extensions.u16(), extensions.u16()) {
            let data = extensions.take(usize::from(length))?;
            if kind == 0x002b && data.len() == 2 {
                version = Version(u16::from_be_bytes([data[0], data[1]]));
            }
        }
    }
    Some(ServerHello { version, suite })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

/// A ClientHello record for `version` offering `suites`.
pub fn client_hello(server_name: Option<&str>, version: Version, suites: &[u16]) -> Vec<u8> {
    let random: [u8; 32] = std::array::from_fn(|_| rand_byte());
    let legacy = version.min(Version::TLS1_2);
    let mut body = Vec::with_capacity(512);
    body.extend(legacy.0.to_be_bytes());
    body.extend(random);
    if version == Version::TLS1_3 {
        // A session id, as TLS 1.3's middlebox compatibility asks.
        body.push(32);
        body.extend(std::iter::repeat_with(rand_byte).take(32));
    } else {
        body.push(0);
    }
    // The renegotiation-info signalling suite keeps old servers talking.
    let offered: Vec<u16> = suites.iter().copied().chain([0x00ff]).collect();
    with_length16(&mut body, |b| offered.iter().for_each(|s| b.extend(s.to_be_bytes())));
    body.extend([1, 0]);
    if version > Version::SSL3 {
        with_length16(&mut body, |b| extensions(b, server_name, version));
    }
    let mut handshake = vec![1];
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16];
    record.extend(version.min(Version::TLS1_0).0.to_be_bytes());
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

fn extensions(out: &mut Vec<u8>, server_name: Option<&str>, version: Version) {
    let extension = |out: &mut Vec<u8>, kind: u16, data: &dyn Fn(&mut Vec<u8>)| {
        out.extend(kind.to_be_bytes());
        with_length16(out, data);
    };
    if let Some(name) = server_name {
        extension(out, 0x0000, &|b| {
            with_length16(b, |b| {
                b.push(0);
                with_length16(b, |b| b.extend(name.as_bytes()));
            })
        });
    }
    // x25519, P-256, P-384.
    extension(out, 0x000a, &|b| {
        with_length16(b, |b| b.extend([0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]))
    });
    extension(out, 0x000b, &|b| b.extend([1, 0]));
    if version >= Version::TLS1_2 {
        const SCHEMES: [u16; 11] = [
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0807, 0x0201, 0x0203,
        ];
        extension(out, 0x000d, &|b| {
            with_length16(b, |b| SCHEMES.iter().for_each(|s| b.extend(s.to_be_bytes())))
        });
    }
    if version == Version::TLS1_3 {
        extension(out, 0x002b, &|b| b.extend([2, 0x03, 0x04]));
        // Any 32 bytes are an x25519 public key; the handshake never gets
        // far enough to need the private half.
        extension(out, 0x0033, &|b| {
            with_length16(b, |b| {
                b.extend([0x00, 0x1d, 0x00, 0x20]);
                b.extend(std::iter::repeat_with(rand_byte).take(32));
            })
        });
    }
    extension(out, 0xff01, &|b| b.push(0));
}

fn with_length16(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend([0, 0]);
    fill(out);
    let length = (out.len() - at - 2) as u16;
    out[at..at + 2].copy_from_slice(&length.to_be_bytes());
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_hello(version: u16, suite: u16, supported: Option<u16>) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend([7; 32]);
        body.push(0);
        body.extend(suite.to_be_bytes());
        body.push(0);
        if let Some(v) = supported {
            body.extend([0, 6, 0x00, 0x2b, 0, 2]);
            body.extend(v.to_be_bytes());
        }
        let mut message = vec![2, 0, 0, body.len() as u8];
        message.extend(body);
        message
    }

    #[test]
    fn server_hellos_are_read() {
        assert_eq!(
            parse_server_hello(&server_hello(0x0301, 0x002f, None)),
            Some(ServerHello {
                version: Version::TLS1_0,
                suite: 0x002f
            })
        );
        assert_eq!(
            parse_server_hello(&server_hello(0x0303, 0x1301, Some(0x0304))).map(|h| h.version),
            Some(Version::TLS1_3)
        );
        // A certificate message, or a cut one, is no ServerHello.
        assert_eq!(parse_server_hello(&[11, 0, 0, 0]), None);
        assert_eq!(parse_server_hello(&server_hello(0x0303, 0x1301, None)[..20]), None);
    }

    #[test]
    fn a_client_hello_is_framed_with_its_lengths() {
        let hello = client_hello(Some("example.com"), Version::TLS1_2, &[0xc02f]);
        assert_eq!(&hello[..3], &[0x16, 0x03, 0x01]);
        assert_eq!(usize::from(u16::from_be_bytes([hello[3], hello[4]])), hello.len() - 5);
        assert_eq!(hello[5], 1);
        assert_eq!(&hello[9..11], &[0x03, 0x03]);
        assert!(hello.windows(11).any(|w| w == b"example.com"));
        // SSL 3.0 carries no extensions and its own record version.
        let ssl3 = client_hello(None, Version::SSL3, &[0x000a]);
        assert_eq!(&ssl3[1..3], &[0x03, 0x00]);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_server_hello(&bytes);
        }
    }
}
