// End-to-end test of the chat page (src/page.html) in headless Chromium: two people join
// "Lounge", see each other, chat both ways, one leaves; screenshots go to artifacts/e2e/
// (alice.png, bob.png, both side by side in chat.png, and error.png: an error shown).
//
// Run: node tests/e2e/chat.e2e.mjs  (or `make e2e`, which also installs and builds).
// MESSENGER_BIN picks the server binary (default target/debug/messenger);
// CHROMIUM the browser (default /usr/bin/chromium, Debian's package).
import { spawn } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = resolve(ROOT, process.env.MESSENGER_BIN || 'target/debug/messenger');
const ARTIFACTS = join(ROOT, 'artifacts/e2e');
const WAIT = 10_000; // longest wait for something to show up; a watchdog, not a speed test

// --- A tiny harness: named steps in order; after the first failure the rest are skipped.
let passed = 0, failed = 0, skipped = 0;
async function step(name, fn) {
  if (failed) { skipped++; console.log(`skip ${name}`); return; }
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${String(e.message || e).split('\n').join('\n     ')}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

// --- The server: started on an ephemeral port; its stdout tells the port.
function startServer() {
  const proc = spawn(BIN, ['--listen', '127.0.0.1:0', '--page', 'on'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise(res => proc.on('exit', (code, signal) => res({ code, signal })));
  const port = new Promise((res, rej) => {
    proc.on('error', rej);
    exited.then(x => rej(new Error(`server exited before listening: ${JSON.stringify(x)}`)));
    createInterface({ input: proc.stdout }).on('line', line => {
      const m = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line.trim());
      if (m) res(Number(m[1]));
    });
  });
  return { proc, exited, port };
}

// --- What a person sees: wait until the page shows it (or fail, saying what it shows).
async function waitFor(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT });
  } catch (e) {
    const shows = await page.evaluate(() => ({
      status: document.querySelector('#status').textContent,
      error: document.querySelector('#error').hidden ? '' : document.querySelector('#error').textContent,
      title: document.querySelector('#title').textContent,
      members: document.querySelector('#members').innerText,
      log: document.querySelector('#log').innerText,
    })).catch(() => 'page gone');
    throw new Error(`${what}: not seen within ${WAIT} ms. The page shows ${JSON.stringify(shows)}`);
  }
}
const items = sel => [...document.querySelectorAll(sel + ' li')].map(li => li.textContent);
const seesText = (page, who, sel, text) => waitFor(page, `${who} sees ${sel} containing ${JSON.stringify(text)}`,
  ([s, t]) => document.querySelector(s).textContent.includes(t), [sel, text]);
const seesList = (page, who, sel, list) => waitFor(page, `${who} sees ${sel} = ${JSON.stringify(list)}`,
  ([s, want]) => JSON.stringify([...document.querySelectorAll(s + ' li')].map(li => li.textContent)) ==
    JSON.stringify(want), [sel, list]);

async function joinAs(page, user, room, acl) {
  await page.fill('#user', user);
  await page.fill('#room', room);
  if (acl) { await page.check('#secure'); await page.fill('#acl', acl); }
  await page.click('#join');
}
async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

// --- The scenario.
const server = startServer();
const watchdog = setTimeout(() => { console.log('FAIL watchdog: the test hung'); server.proc.kill('SIGKILL'); process.exit(1); }, 120_000);
let browser;
const pageErrors = [];
const open = async (name, url) => {
  const ctx = await browser.newContext({ viewport: { width: 640, height: 440 } });
  const page = await ctx.newPage();
  page.on('pageerror', e => pageErrors.push(`${name}: ${e.message}`));
  const res = await page.goto(url);
  assert(res.status() == 200, `GET / answered ${res.status()}`);
  assert(/text\/html/.test(res.headers()['content-type'] || ''), `GET / content-type ${res.headers()['content-type']}`);
  return page;
};
let port, alice, bob, carol;
const HELLO = 'Hello Bob, this is Alice', HI = 'Hi Alice! Bob here <b>not bold</b>';

await step('server starts with --page on and prints its port', async () => {
  port = await server.port;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
await step('GET / serves the page, which connects over WebSocket', async () => {
  alice = await open('Alice', `http://127.0.0.1:${port}/`);
  bob = await open('Bob', `http://127.0.0.1:${port}/`);
  assert(await alice.title() == 'Messenger', `title ${await alice.title()}`);
  await seesText(alice, 'Alice', '#status', 'connected');
  await seesText(bob, 'Bob', '#status', 'connected');
});
await step('Alice joins Lounge and sees herself and the room', async () => {
  await joinAs(alice, 'Alice', 'Lounge');
  await seesText(alice, 'Alice', '#title', 'Lounge as Alice');
  await seesList(alice, 'Alice', '#members', ['Alice']);
  await seesList(alice, 'Alice', '#rooms', ['Lounge']);
  await seesList(bob, 'Bob', '#rooms', ['Lounge']);
});
await step('Bob joins Lounge; each sees the other', async () => {
  await joinAs(bob, 'Bob', 'Lounge');
  await seesList(bob, 'Bob', '#members', ['Alice', 'Bob']);
  await seesList(alice, 'Alice', '#members', ['Alice', 'Bob']);
  await seesText(alice, 'Alice', '#log', 'Bob joined');
});
await step('messages go both ways, in order, echoed to the sender', async () => {
  await say(alice, HELLO);
  await seesText(bob, 'Bob', '#log', 'Alice: ' + HELLO);
  await seesText(alice, 'Alice', '#log', 'Alice: ' + HELLO);
  await say(bob, HI);
  await seesText(alice, 'Alice', '#log', 'Bob: ' + HI);
  await seesText(bob, 'Bob', '#log', 'Bob: ' + HI);
  for (const [who, page] of [['Alice', alice], ['Bob', bob]]) {
    const log = await page.evaluate(items, '#log');
    const order = [log.indexOf('Alice: ' + HELLO), log.indexOf('Bob: ' + HI)];
    assert(order[0] >= 0 && order[0] < order[1], `${who}'s log out of order: ${JSON.stringify(log)}`);
    assert(await page.inputValue('#text') == '', `${who}'s message box not cleared`);
  }
  // Markup in a message is shown as text, never interpreted.
  assert(await alice.locator('#log b', { hasText: 'not bold' }).count() == 0, 'message markup was interpreted');
});
await step('a secure room with an ACL shows in the room list; a taken name shows an error', async () => {
  carol = await open('Carol', `http://127.0.0.1:${port}/`);
  await seesText(carol, 'Carol', '#status', 'connected');
  await joinAs(carol, 'Alice', 'Lounge');
  await seesText(carol, 'Carol', '#error', 'ERROR_ILLEGAL_STATE');
  mkdirSync(ARTIFACTS, { recursive: true });
  await carol.screenshot({ path: join(ARTIFACTS, 'error.png') });
  await joinAs(carol, 'Carol', 'Vault', `http://127.0.0.1:*, https://*.example.com`);
  await seesText(carol, 'Carol', '#title', 'Vault as Carol');
  await seesList(alice, 'Alice', '#rooms', ['Lounge', 'Vault (secure)']);
  await carol.context().close();
  await seesList(alice, 'Alice', '#rooms', ['Lounge']);
  assert(!(await alice.evaluate(items, '#members')).includes('Carol'), 'Carol showed up in Lounge');
});
await step('screenshots show the conversation', async () => {
  const shots = [];
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    for (const text of [HELLO, HI]) {
      assert(await page.getByText(text).isVisible(), `${who}: "${text}" not visible at screenshot time`);
    }
    const file = join(ARTIFACTS, `${who}.png`);
    shots.push(await page.screenshot({ path: file }));
    assert(statSync(file).size > 10_000, `${file} is only ${statSync(file).size} bytes`);
  }
  // Both side by side in one picture, composed by the browser itself.
  const ctx = await browser.newContext({ viewport: { width: 1300, height: 460 } });
  const both = await ctx.newPage();
  await both.setContent('<body style="margin:0;padding:10px;background:#889;display:flex;gap:10px">' +
    shots.map(png => `<img src="data:image/png;base64,${png.toString('base64')}">`).join('') + '</body>');
  await both.waitForFunction(() => [...document.images].every(i => i.complete && i.naturalWidth > 0));
  const file = join(ARTIFACTS, 'chat.png');
  writeFileSync(file, await both.screenshot());
  assert(statSync(file).size > 20_000, `${file} is only ${statSync(file).size} bytes`);
  await ctx.close();
});
await step('Bob closes his page; Alice sees him leave', async () => {
  await bob.context().close();
  await seesList(alice, 'Alice', '#members', ['Alice']);
  await seesText(alice, 'Alice', '#log', 'Bob left');
});
await step('Alice leaves; the empty room is destroyed', async () => {
  await alice.click('#leave');
  await seesText(alice, 'Alice', '#title', 'Not in a room');
  await seesList(alice, 'Alice', '#rooms', []);
  assert(await alice.isDisabled('#send'), 'send still enabled outside a room');
});
await step('SIGTERM: the page sees close 1001, the server exits 0', async () => {
  server.proc.kill('SIGTERM');
  await seesText(alice, 'Alice', '#status', 'disconnected (1001)');
  const { code, signal } = await server.exited;
  assert(code === 0, `server exit code ${code} signal ${signal}`);
});
await step('no script errors in any page', async () => {
  assert(pageErrors.length == 0, pageErrors.join('\n'));
});

clearTimeout(watchdog);
await browser?.close();
server.proc.kill('SIGKILL');
console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
process.exit(failed ? 1 : 0);
