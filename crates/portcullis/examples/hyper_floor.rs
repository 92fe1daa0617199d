//! The floor under the gateway's per-request cost: the same HTTP engine
//! (hyper's HTTP/1.1 server and client on current-thread tokio runtimes,
//! keep-alive connections to the upstream) with no policy at all. Each request
//! goes to the upstream as it came, and its response back as it came.
//! `bench/instructions.sh` counts it and `bench/run.sh` loads it beside
//! portcullis and nginx, so the figures show how much of portcullis's cost is
//! the engine and how much its policies; it is a measuring tool, not
//! something to deploy.
//!
//! Usage: hyper_floor LISTEN_ADDR UPSTREAM_ADDR [WORKERS]   (addresses host:port)
//!
//! Like the gateway, each of WORKERS threads (default 1) runs its own event
//! loop with its own `SO_REUSEPORT` listener and upstream connections.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Senders = Rc<RefCell<Vec<SendRequest<Incoming>>>>;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: hyper_floor LISTEN_ADDR UPSTREAM_ADDR [WORKERS]");
        std::process::exit(2);
    };
    let parse = |text: String| text.parse::<SocketAddr>().map_err(std::io::Error::other);
    let (listen, upstream) = (parse(listen)?, parse(upstream)?);
    let workers = args
        .next()
        .map_or(Ok(1), |n| n.parse::<usize>().map_err(std::io::Error::other))?;
    let listeners = (0..workers)
        .map(|_| reuse_port_listener(listen))
        .collect::<std::io::Result<Vec<_>>>()?;
    let threads: Vec<_> = listeners
        .into_iter()
        .map(|listener| std::thread::spawn(move || worker(listener, upstream)))
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| std::io::Error::other("a worker panicked"))??;
    }
    Ok(())
}

fn reuse_port_listener(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn worker(listener: std::net::TcpListener, upstream: SocketAddr) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    // A background job of a script starts with SIGINT ignored; listening for
    // it puts it back, so the bench can end the floor as it ends the others.
    local.block_on(&runtime, async {
        let listener = TcpListener::from_std(listener)?;
        tokio::select! {
            served = serve(listener, upstream) => served,
            stopped = tokio::signal::ctrl_c() => stopped,
        }
    })
}

async fn serve(listener: TcpListener, upstream: SocketAddr) -> std::io::Result<()> {
    let senders: Senders = Rc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let senders = senders.clone();
        tokio::task::spawn_local(async move {
            let service = service_fn(move |request| forward(request, upstream, senders.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// On failure, hyper drops the connection: a measuring tool needs no error page.
async fn forward(
    request: Request<Incoming>,
    upstream: SocketAddr,
    senders: Senders,
) -> Result<Response<Incoming>, Error> {
    let mut sender = match checkout(&senders) {
        Some(sender) => sender,
        None => connect(upstream).await?,
    };
    let response = sender.send_request(request).await?;
    // Ready again once this response's body has been read to the end.
    senders.borrow_mut().push(sender);
    Ok(response)
}

/// A connection that is free, forgetting those that closed.
fn checkout(senders: &Senders) -> Option<SendRequest<Incoming>> {
    let mut senders = senders.borrow_mut();
    senders.retain(|sender| !sender.is_closed());
    let ready = senders.iter().position(SendRequest::is_ready)?;
    Some(senders.swap_remove(ready))
}

async fn connect(upstream: SocketAddr) -> Result<SendRequest<Incoming>, Error> {
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(connection);
    Ok(sender)
}
