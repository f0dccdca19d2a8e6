//! Network links between the nodes of a test cluster that a test can cut and heal.
//!
//! Every node reaches every other node's controller listener through a proxy of its own
//! (one per ordered pair), named in that node's `controller.quorum.voters`; the test's
//! clients still reach each node directly. Cutting a node closes the connections on its
//! links and blackholes new ones (accepted, never forwarded, closed at the heal), so it
//! keeps running and serving its clients while the quorum and the controller cannot hear
//! it, nor it them — a partition, not a crash. No privileges needed: plain sockets.

use super::process::free_port;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One direction of the cluster's wiring: `from` reaches `to` through `port`.
struct Link {
    cut: AtomicBool,
    /// Both ends of every connection made through it, to close at a cut.
    conns: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

impl Link {
    fn close_all(&self) {
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

pub struct Links {
    links: BTreeMap<(i32, i32), (u16, Arc<Link>)>,
    cports: BTreeMap<i32, u16>,
}

fn pump(mut from: TcpStream, mut to: TcpStream, link: Arc<Link>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if link.cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn serve(listener: TcpListener, upstream: u16, link: Arc<Link>) {
    listener.set_nonblocking(true).unwrap();
    while !link.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(_) => break,
        };
        client.set_nonblocking(false).unwrap();
        if link.cut.load(Ordering::SeqCst) {
            // Blackholed: the connection stands, nothing crosses; closed at the heal.
            link.conns.lock().unwrap().push(client);
            continue;
        }
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
            continue; // the node is down: the caller sees its connection closed
        };
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        {
            let mut conns = link.conns.lock().unwrap();
            conns.push(client.try_clone().unwrap());
            conns.push(server.try_clone().unwrap());
        }
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let (l1, l2) = (link.clone(), link.clone());
        std::thread::spawn(move || pump(client, server, l1));
        std::thread::spawn(move || pump(s2, c2, l2));
    }
}

impl Links {
    /// Proxies between every two of the nodes whose controller ports are `cports`.
    pub fn new(cports: &BTreeMap<i32, u16>) -> Self {
        let mut links = BTreeMap::new();
        for from in cports.keys() {
            for (to, cport) in cports {
                if from == to {
                    continue;
                }
                let port = free_port();
                let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
                let link = Arc::new(Link { cut: AtomicBool::new(false), conns: Mutex::new(Vec::new()), stop: AtomicBool::new(false) });
                let (l, upstream) = (link.clone(), *cport);
                std::thread::spawn(move || serve(listener, upstream, l));
                links.insert((*from, *to), (port, link));
            }
        }
        Links { links, cports: cports.clone() }
    }

    /// `controller.quorum.voters` as node `id` must see it: the others through its links.
    pub fn voters_for(&self, id: i32) -> String {
        self.cports
            .iter()
            .map(|(v, cport)| if *v == id { format!("{v}@127.0.0.1:{cport}") } else { format!("{v}@127.0.0.1:{}", self.links[&(id, *v)].0) })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Cuts `node` off from every other node, both ways.
    pub fn isolate(&self, node: i32) {
        for ((from, to), (_, link)) in &self.links {
            if *from == node || *to == node {
                link.cut.store(true, Ordering::SeqCst);
                link.close_all();
            }
        }
    }

    /// Restores every link; connections blackholed meanwhile are closed, so their callers
    /// dial again.
    pub fn heal(&self) {
        for (_, link) in self.links.values() {
            link.cut.store(false, Ordering::SeqCst);
            link.close_all();
        }
    }

    /// The links that are cut now, as (from, to).
    pub fn cut(&self) -> BTreeSet<(i32, i32)> {
        self.links.iter().filter(|(_, (_, l))| l.cut.load(Ordering::SeqCst)).map(|(k, _)| *k).collect()
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        for (_, link) in self.links.values() {
            link.stop.store(true, Ordering::SeqCst);
            link.close_all();
        }
    }
}
