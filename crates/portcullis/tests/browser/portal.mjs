// The login portal as a user meets it, in headless Chromium: an admin page
// behind an [[access]] rule, a wrong password, the right one, a TOTP code,
// the identity the app sees, a second gateway sharing the session through
// Redis, logout, and an old session cookie tried again. The Rust test starts
// the app, the gateways and Redis, and asserts on the JSON this prints.
import crypto from 'node:crypto';
import { launch } from './chromium.mjs';

const gateway = process.env.GATEWAY;
const secondGateway = process.env.SECOND_GATEWAY;
const secret = process.env.TOTP_SECRET;

// RFC 6238 with SHA-1, six digits, 30-second steps, computed here from the
// enrolled secret as an authenticator app would.
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}
function totp(key, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', base32(key)).update(counter).digest();
  const offset = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1000000).padStart(6, '0');
}
const step = () => Math.floor(Date.now() / 30000);

const browser = await launch();
const results = {};
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const violations = [];
  page.on('console', (message) => {
    if (message.text().includes('Content Security Policy')) violations.push(message.text());
  });

  await page.goto(`${gateway}/admin`);
  results.redirectedTo = new URL(page.url()).pathname + new URL(page.url()).search;

  await page.fill('#username', 'ada');
  await page.fill('#password', 'not the password');
  const wrong = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  results.wrongPasswordStatus = wrong[0].status();
  results.wrongPasswordMessage = await page.textContent('[role=alert]');

  await page.fill('#username', 'ada');
  await page.fill('#password', 'correct horse battery staple');
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  results.afterPassword = new URL(page.url()).pathname;
  const halfway = (await context.cookies()).find((c) => c.name === '__Host-portcullis-session');

  await page.fill('#code', totp(secret, step()));
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  results.afterCode = new URL(page.url()).pathname;
  results.adminUser = await page.textContent('#user');
  results.adminGroups = await page.textContent('#groups');

  const session = (await context.cookies()).find((c) => c.name === '__Host-portcullis-session');
  results.sessionCookie = session && {
    httpOnly: session.httpOnly, secure: session.secure, sameSite: session.sameSite, path: session.path,
    rotated: Boolean(halfway) && halfway.value !== session.value,
  };
  results.documentCookie = await page.evaluate(() => document.cookie);

  // What the app itself received: the identity, and no session cookie.
  await page.goto(`${gateway}/admin/identity`);
  results.identity = JSON.parse(await page.textContent('body'));

  // The response filter: the app's user list reaches the browser without hashes.
  await page.goto(`${gateway}/api/users`);
  results.usersBody = await page.textContent('body');

  // The same browser on another gateway sharing the store: cookies are per
  // host, not per port, so it presents the same session.
  await page.goto(`${secondGateway}/admin`);
  results.secondGatewayUser = await page.textContent('#user').catch(() => null);
  results.secondGatewayPath = new URL(page.url()).pathname;

  await page.goto(`${gateway}/.portcullis/logout`);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  results.logoutMessage = await page.textContent('main p');
  await page.goto(`${gateway}/admin`);
  results.afterLogout = new URL(page.url()).pathname;

  // The session cookie copied before logout, in a fresh browser.
  const thief = await browser.newContext({ ignoreHTTPSErrors: true });
  await thief.addCookies([{ ...session, sameSite: 'Lax' }]);
  const stolen = await thief.newPage();
  await stolen.goto(`${gateway}/admin`);
  results.oldCookiePath = new URL(stolen.url()).pathname;
  results.cspViolations = violations;
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results));
