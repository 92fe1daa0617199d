// Browser scenarios for the cookie and CSRF policies, in headless Chromium.
// The Rust test starts the app and the gateways, runs this script with their
// URLs, and asserts on the JSON it prints. Everything stays on loopback.
import http from 'node:http';
import { once } from 'node:events';
import { launch } from './chromium.mjs';

const gateway = process.env.GATEWAY;
const tokenGateway = process.env.TOKEN_GATEWAY;
const httpsGateway = process.env.HTTPS_GATEWAY;

// A page on another loopback origin (another port) that posts a form to the
// app as soon as it loads: the classic CSRF attack. `?to=` names another
// target, `?size=` pads the form with that many bytes.
const attacker = http.createServer((req, res) => {
  const query = new URL(req.url, 'http://attacker').searchParams;
  const target = query.get('to') || gateway;
  const padding = 'x'.repeat(Number(query.get('size') || 0));
  res.setHeader('content-type', 'text/html');
  res.end(`<!doctype html><form id="f" method="post" action="${target}/form">
    <input name="name" value="mallory"><textarea name="message">${padding}</textarea></form>
    <script>document.getElementById('f').submit()</script>`);
});
attacker.listen(0, '127.0.0.1');
await once(attacker, 'listening');
const attackerUrl = `http://127.0.0.1:${attacker.address().port}/`;

const browser = await launch();
const results = {};
try {
  const context = await browser.newContext();
  const page = await context.newPage();

  // Log in through the app's own form.
  await page.goto(`${gateway}/login`);
  await page.fill('input[name=username]', 'ada');
  await page.fill('input[name=password]', 'correct horse battery staple');
  const [login] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'),
    page.click('button[type=submit]'),
  ]);
  results.login = login.status();
  await page.goto(`${gateway}/`);
  results.documentCookie = await page.evaluate(() => document.cookie);
  results.cookies = (await context.cookies()).map(({ name, httpOnly, sameSite, path }) => ({ name, httpOnly, sameSite, path }));
  results.me = await page.evaluate(() => fetch('/me').then((r) => r.json()));

  // The same form served by the app itself.
  await page.goto(`${gateway}/form`);
  await page.fill('input[name=name]', 'Ada');
  const [sameOrigin] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/form') && r.request().method() === 'POST'),
    page.click('button[type=submit]'),
  ]);
  results.sameOriginForm = { status: sameOrigin.status(), text: await sameOrigin.text() };

  // A form on another origin, in the same logged-in browser.
  const attack = await context.newPage();
  const [crossOrigin] = await Promise.all([
    attack.waitForResponse((r) => r.url() === `${gateway}/form` && r.request().method() === 'POST'),
    attack.goto(attackerUrl),
  ]);
  results.crossOriginForm = { status: crossOrigin.status(), text: await crossOrigin.text() };

  // Over HTTPS, where browsers speak HTTP/2: refused before the body is
  // read (403 cross-site, 413 too large), the page must still arrive.
  if (httpsGateway) {
    const tls = await browser.newContext({ ignoreHTTPSErrors: true });
    results.httpsCrossOriginForms = [];
    for (const size of [100 * 1024, 2 * 1024 * 1024]) {
      const page = await tls.newPage();
      const [answer] = await Promise.all([
        page.waitForResponse((r) => r.url() === `${httpsGateway}/form` && r.request().method() === 'POST'),
        page.goto(`${attackerUrl}?to=${encodeURIComponent(httpsGateway)}&size=${size}`),
      ]);
      await page.waitForURL(`${httpsGateway}/form`);
      results.httpsCrossOriginForms.push({
        size,
        status: answer.status(),
        text: await page.textContent('body'),
        protocol: await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol),
      });
    }
  }

  // Token mode: the app's front-end reads the token cookie and sends the header.
  if (tokenGateway) {
    const spa = await (await browser.newContext()).newPage();
    await spa.goto(`${tokenGateway}/`); // the first visit receives the token cookie
    await spa.goto(`${tokenGateway}/spa`);
    await spa.waitForFunction(() => document.getElementById('result').textContent !== 'loading');
    results.tokenMode = JSON.parse(await spa.textContent('#result'));
  }
} finally {
  await browser.close();
  attacker.close();
}
console.log(JSON.stringify(results));
