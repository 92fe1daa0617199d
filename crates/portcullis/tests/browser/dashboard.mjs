// The live dashboard as an operator meets it, in headless Chromium: the page
// opens under its strict CSP, then attacks this script sends to the gateway
// must appear on it within a second. Prints JSON for the Rust test; the
// screenshot goes to SCREENSHOT.
import { launch } from './chromium.mjs';

const dashboard = process.env.DASHBOARD;
const gateway = process.env.GATEWAY;
const browser = await launch();
const results = { violations: [], errors: [] };
try {
  const page = await browser.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') results.errors.push(message.text());
  });
  page.on('pageerror', (error) => results.errors.push(String(error)));
  await page.exposeFunction('reportViolation', (v) => results.violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.reportViolation(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const response = await page.goto(`${dashboard}/dashboard`);
  results.csp = response.headers()['content-security-policy'];
  await page.waitForSelector('#status.live', { timeout: 5000 });

  const marker = `probe-${Date.now()}`;
  const sent = Date.now();
  const attack = await fetch(`${gateway}/echo?${marker}=%27%20OR%201%3D1--`);
  results.attackStatus = attack.status;
  await page.waitForFunction(
    () => [...document.querySelectorAll('#events tr')].some((row) => row.textContent.includes('sqli')),
    null,
    { timeout: 1000, polling: 20 },
  );
  results.shownAfterMs = Date.now() - sent;
  // The counts the page shows, after one more, from another "client" path.
  await fetch(`${gateway}/echo?q=%3Cscript%3Ealert(1)%3C/script%3E`);
  await page.waitForFunction(
    () => [...document.querySelectorAll('#events tr')].some((row) => row.textContent.includes('xss')),
    null,
    { timeout: 1000, polling: 20 },
  );
  results.rows = await page.$$eval('#events tr', (rows) => rows.map((r) => r.textContent));
  results.clients = await page.$$eval('#clients tr', (rows) => rows.map((r) => r.textContent));
  results.bars = await page.$$eval('#chart rect', (bars) => bars.length);
  results.legend = await page.$$eval('#legend li', (items) => items.map((i) => i.textContent));
  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
} catch (error) {
  results.failure = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
