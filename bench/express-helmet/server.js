// The example app as a team would harden it in-process: helmet in front of
// every route, X-Powered-By disabled. Benchmarked against the same app behind
// portcullis.
'use strict';

const express = require('express');
const helmet = require('helmet');
const app = require('../../examples/express-app/app.js');

app.disable('x-powered-by');
const hardened = express();
hardened.disable('x-powered-by');
hardened.use(helmet());
hardened.use(app);

const port = Number(process.env.PORT || 3001);
hardened.listen(port, '127.0.0.1', () => console.log(`express+helmet listening on http://127.0.0.1:${port}`));
