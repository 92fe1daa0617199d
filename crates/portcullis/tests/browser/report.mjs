// Opens an audit's HTML report in headless Chromium, as someone who gets it
// attached to a ticket would, and prints what the page shows (its text, and
// whether any script ran) as JSON; saves a screenshot beside the report.
import { launch } from './chromium.mjs';

const [report, screenshot] = process.argv.slice(2);
const browser = await launch();
const page = await browser.newPage();
let dialogs = 0;
page.on('dialog', async (dialog) => {
  dialogs += 1;
  await dialog.dismiss();
});
await page.goto(`file://${report}`);
const text = await page.evaluate(() => document.body.innerText);
await page.screenshot({ path: screenshot, fullPage: true });
await browser.close();
console.log(JSON.stringify({ text, dialogs }));
