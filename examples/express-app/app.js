// A plain Express 5 app, written the way many teams ship one: no helmet, the
// default 404 page, the default error handler (which prints stack traces when
// NODE_ENV is not "production"), X-Powered-By left on. portcullis sits in front
// of it in the demo and in the tests; the app itself knows nothing about it.
'use strict';

const http = require('node:http');
const express = require('express');
const multer = require('multer');
const session = require('express-session');
const cookieSession = require('cookie-session');
const { WebSocketServer } = require('ws');

const app = express();
const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: 50 * 1024 * 1024 } });

// How many requests reached the app at all (this one excepted), so tests can
// prove that the gateway kept a request away from it.
let received = 0;
app.use((req, res, next) => {
  if (req.path !== '/received') received += 1;
  next();
});
app.get('/received', (req, res) => res.json({ received }));

app.use(express.urlencoded({ extended: false }));
app.use(express.json());

// Sessions with the packages' defaults, as the tutorials set them up:
// express-session (cookie `connect.sid`, in-memory store) for the shop, and
// cookie-session (cookies `session` and `session.sig`) for the account area.
const users = { ada: 'correct horse battery staple' };

function login(req, res) {
  const { username, password } = req.body || {};
  if (users[username] === undefined || users[username] !== password) {
    return res.status(401).json({ error: 'invalid username or password' });
  }
  req.session.user = username;
  res.json({ user: username });
}

function whoami(req, res) {
  if (!req.session || !req.session.user) {
    return res.status(401).json({ error: 'not logged in' });
  }
  res.json({ user: req.session.user, cookies: req.headers.cookie });
}

const account = express.Router();
account.use(cookieSession({ keys: ['example key'] }));
account.post('/login', login);
account.get('/me', whoami);
app.use('/account', account);

app.use(session({ secret: 'keyboard cat', resave: false, saveUninitialized: false }));
app.get('/login', (req, res) => {
  res.send(`<!doctype html>
<html><body>
<form method="post" action="/login">
  <input name="username"> <input name="password" type="password">
  <button type="submit">Log in</button>
</form>
</body></html>`);
});
app.post('/login', login);
app.get('/me', whoami);

app.get('/', (req, res) => {
  res.send(`<!doctype html>
<html><head><title>Example shop</title></head>
<body>
  <h1>Example shop</h1>
  <ul>
    <li><a href="/api/products">JSON API</a></li>
    <li><a href="/form">Contact form</a></li>
    <li><a href="/upload">File upload</a></li>
    <li><a href="/boom">A route that throws</a></li>
    <li><a href="/no-such-page">A page that does not exist</a></li>
  </ul>
</body></html>`);
});

const products = [
  { id: 1, name: 'Lamp', price: 25 },
  { id: 2, name: 'Chair', price: 80 },
];

app.get('/api/products', (req, res) => {
  res.json(products);
});

app.get('/api/products/:id', (req, res) => {
  const product = products.find((p) => String(p.id) === req.params.id);
  if (!product) {
    return res.status(404).json({ error: 'not found' });
  }
  res.json(product);
});

// What the app was sent, so tests can see what the gateway forwarded.
// User records sent the way a whole database document often is: with the
// password hash and the reset token that should never leave the server.
const accounts = [
  { id: 1, name: 'ada', passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g', resetToken: 'r-1f9c' },
  { id: 2, name: 'grace', passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdDI$aGFzaDI', resetToken: null },
];
app.get('/api/users', (req, res) => res.json(accounts));

// A larger answer of the same kind (`?kb=` kibibytes, 1 to 1024), for benchmarks.
app.get('/api/users/export', (req, res) => {
  const kb = Math.min(Math.max(Number(req.query.kb) || 100, 1), 1024);
  const rows = [];
  for (let size = 0, id = 1; size < kb * 1024; id += 1) {
    const row = { id, name: `user${id}`, email: `user${id}@example.com`, passwordHash: accounts[0].passwordHash };
    rows.push(row);
    size += JSON.stringify(row).length + 1;
  }
  res.json(rows);
});

// An admin area with no access control of its own: it trusts the identity
// the gateway in front of it passes on, and shows it.
app.get('/admin', (req, res) => {
  const user = req.get('x-portcullis-user');
  res.send(`<!doctype html><html><body><h1>Admin</h1>
<p id="user">${escapeHtml(user || 'nobody')}</p><p id="groups">${escapeHtml(req.get('x-portcullis-groups') || '')}</p>
</body></html>`);
});
app.get('/admin/identity', (req, res) => {
  res.json({
    user: req.get('x-portcullis-user') || null,
    groups: req.get('x-portcullis-groups') || null,
    cookie: req.get('cookie') || null,
  });
});

app.all('/echo', (req, res) => {
  res.json({ method: req.method, url: req.originalUrl, headers: req.headers, ip: req.socket.remoteAddress, port: req.socket.remotePort });
});

// How many requests reached /hit, so tests can count what the gateway let through.
let hits = 0;
app.get('/hit', (req, res) => {
  hits += 1;
  res.json({ hits });
});
app.get('/hits', (req, res) => res.json({ hits }));

// Counts the body bytes without keeping them, so large uploads cost nothing here.
app.post('/count', (req, res) => {
  let bytes = 0;
  req.on('data', (chunk) => { bytes += chunk.length; });
  req.on('end', () => res.json({ bytes }));
});

// jQuery from its CDN, pinned the day the page was written.
app.get('/form', (req, res) => {
  res.send(`<!doctype html>
<html><head><script src="https://code.jquery.com/jquery-1.12.4.min.js"></script></head><body>
<form method="post" action="/form">
  <input name="name"> <textarea name="message"></textarea>
  <button type="submit">Send</button>
</form>
</body></html>`);
});

app.post('/form', (req, res) => {
  res.send(`<!doctype html><html><body><p>Thanks, ${escapeHtml(req.body.name || 'friend')}.</p></body></html>`);
});

app.get('/upload', (req, res) => {
  res.send(`<!doctype html>
<html><body>
<form method="post" action="/upload" enctype="multipart/form-data">
  <input type="file" name="file"> <button type="submit">Upload</button>
</form>
</body></html>`);
});

app.post('/upload', upload.single('file'), (req, res) => {
  if (!req.file) {
    return res.status(400).json({ error: 'no file' });
  }
  res.json({ name: req.file.originalname, size: req.file.size });
});

// A route with a bug: the default error handler answers with the stack trace.
app.get('/boom', (req, res) => {
  const order = undefined;
  res.json({ total: order.total });
});

// A route whose database error text reaches the client.
app.get('/db-error', (req, res) => {
  res.status(500).send("ER_PARSE_ERROR: You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '' at line 1");
});

// The app's own, designed error page: it leaks nothing and must pass unchanged.
app.get('/designed-error', (req, res) => {
  res.status(503).send('<!doctype html><html><body><h1>We will be back soon</h1><p>Our shop is under maintenance.</p></body></html>');
});

app.get('/slow', (req, res) => {
  const ms = Math.min(Number(req.query.ms) || 1000, 60000);
  setTimeout(() => res.send(`done after ${ms} ms`), ms);
});

// A large download, generated on the fly in 64 KiB chunks with back-pressure.
app.get('/download', (req, res) => {
  const total = Math.min(Number(req.query.mb) || 1, 1024) * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'x');
  res.set('Content-Type', 'application/octet-stream');
  res.set('Content-Length', String(total));
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      const piece = total - sent >= chunk.length ? chunk : chunk.subarray(0, total - sent);
      sent += piece.length;
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
});

// A front-end that talks to the API with fetch, the way single-page apps do:
// it reads the CSRF token cookie (when the gateway issues one) and sends it
// back in a header.
app.get('/spa', (req, res) => {
  res.send('<!doctype html><html><body><p id="result">loading</p><script src="/spa.js"></script></body></html>');
});

app.get('/spa.js', (req, res) => {
  res.type('application/javascript').send(`
    const token = (document.cookie.match(/(?:^|; )csrf-token=([^;]*)/) || [])[1];
    const post = (headers) => fetch('/echo', { method: 'POST', headers }).then((r) => r.status);
    Promise.all([post({ 'x-csrf-token': token || '' }), post({})]).then(([withToken, without]) => {
      document.getElementById('result').textContent = JSON.stringify({ token: Boolean(token), withToken, without });
    });
  `);
});

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Exported for tests and benchmarks that mount it; listens when run directly.
module.exports = app;

if (require.main === module) {
  const server = http.createServer(app);

  // WebSocket echo, the way socket.io-style apps upgrade on the same port.
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });

  const port = process.env.PORT === undefined ? 3000 : Number(process.env.PORT);
  const host = process.env.HOST || '127.0.0.1';
  server.listen(port, host, () => {
    console.log(`example app listening on http://${host}:${server.address().port}`);
  });

  const shutdown = () => {
    wss.clients.forEach((c) => c.terminate());
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
