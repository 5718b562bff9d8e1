// The console (`/`) and the docs (`/docs`) in a real browser: Debian's chromium driven by
// playwright-core, against the real server binary serving a temp copy of `registry/`.
//
//   node console.test.mjs                 the checks (CI: .ci/run)
//   node console.test.mjs --screenshots   the checks, then docs/console.png and docs/docs.png
//   node console.test.mjs --cpu [SECONDS] the server's CPU time idle and with a console open
//                                         refreshing every second (BENCHMARKS.md)
//
// Every page runs in a context whose every request is routed through `offsite`: a request for
// anything but this server fails the test (and is aborted), as does any Content-Security-Policy
// violation or page error in the console messages.

import { spawn, execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, copyFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { test, after, before } from "node:test";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../..");
const BINARY = process.env.MODELHOST_BIN || join(ROOT, "target/debug/modelhost");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const HOSTILE = join(ROOT, "host/tests/fixtures/hostile/native.elf");
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run"];
const SCREENSHOTS = process.argv.includes("--screenshots");
const CPU = process.argv.includes("--cpu");
// Generous: CI machines are shared, and a wait ends as soon as its condition holds.
const TIMEOUT = 30000;

// ---- the server -------------------------------------------------------------------------

function freePort() {
    return new Promise((ok, fail) => {
        const server = createServer();
        server.on("error", fail);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address();
            server.close(() => ok(port));
        });
    });
}

async function until(what, check, timeout = TIMEOUT) {
    const deadline = Date.now() + timeout;
    let last;
    while (Date.now() < deadline) {
        try {
            const value = await check();
            if (value) return value;
        } catch (error) {
            last = error;
        }
        await new Promise((ok) => setTimeout(ok, 50));
    }
    throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

/// The server on a free port, serving a temp copy of registry/ (`token`: MONITORING_TOKEN;
/// `pollMs`: the registry poll, fast by default so swaps show quickly).
async function startServer({ token, pollMs = 200 } = {}) {
    const dir = mkdtempSync(join(tmpdir(), "modelhost-browser-"));
    const registry = join(dir, "registry");
    cpSync(join(ROOT, "registry"), registry, { recursive: true });
    const port = await freePort();
    const env = { ...process.env, MONITORING_TOKEN: token || "" };
    if (!token) delete env.MONITORING_TOKEN;
    const child = spawn(BINARY, ["serve", "--host", "127.0.0.1", "--port", String(port),
        "--registry-dir", registry, "--log-dir", join(dir, "logs"), "--shutdown-delay-ms", "0",
        "--poll-interval-ms", String(pollMs)], { env, stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr.on("data", (chunk) => { log += chunk; });
    const url = `http://127.0.0.1:${port}`;
    await until("the server to be ready", async () => (await fetch(`${url}/ready`)).ok);
    return {
        url, port, registry, dir, child, token,
        log: () => log,
        async stop() {
            child.kill("SIGINT");
            await new Promise((ok) => (child.exitCode !== null ? ok() : child.on("exit", ok)));
            rmSync(dir, { recursive: true, force: true });
        },
        run(...args) {
            return execFileSync(BINARY, [...args, "--registry-dir", registry], { encoding: "utf8" });
        },
    };
}

const CUSTOMER = { tenure_months: 6, num_complaints: 3, avg_session_minutes: 12.5, plan_type: "basic", region: "AF" };

async function predictDirectly(server, body) {
    const response = await fetch(`${server.url}/predict`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    assert.equal(response.status, 200, await response.clone().text());
    return response.json();
}

// ---- the browser ------------------------------------------------------------------------

let browser;

/// A page whose requests may only go to `server`; `problems` collects the rest. `blocked`: the
/// URLs the page is known to ask for and the Content-Security-Policy is expected to block.
async function openPage(server, path, blocked = []) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const problems = [];
    await context.route("**/*", (route) => {
        const url = new URL(route.request().url());
        if (url.origin === server.url || url.protocol === "data:" || url.protocol === "blob:") {
            return route.continue();
        }
        problems.push(`request leaving the server: ${url.href}`);
        return route.abort();
    });
    const page = await context.newPage();
    page.on("console", (message) => {
        const text = message.text();
        if (/Content.Security.Policy/i.test(text)) {
            if (!blocked.some((url) => text.includes(`'${url}'`))) problems.push(`CSP violation: ${text}`);
        }
        else if (message.type() === "error" && !/status of 401/.test(text)) problems.push(`console error: ${text}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    await page.goto(`${server.url}${path}`);
    return {
        page,
        problems,
        async close() {
            assert.deepEqual(problems, [], "the page stays on this server and breaks no rule");
            await context.close();
        },
    };
}

const text = (page, selector) => page.locator(selector).innerText({ timeout: TIMEOUT });

before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

after(async () => {
    await browser?.close();
});

// ---- the CPU measurement (--cpu) ----------------------------------------------------------

/// utime + stime of `pid`, in seconds (/proc/<pid>/stat fields 14 and 15, in clock ticks).
function cpuSeconds(pid) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));
    return (Number(fields[11]) + Number(fields[12])) / ticks;
}

async function measure(server, seconds) {
    const start = cpuSeconds(server.child.pid);
    const at = performance.now();
    await new Promise((ok) => setTimeout(ok, seconds * 1000));
    return (cpuSeconds(server.child.pid) - start) / ((performance.now() - at) / 1000);
}

if (CPU) {
    const seconds = Number(process.argv[process.argv.indexOf("--cpu") + 1]) || 60;
    test(`server CPU idle and with the console refreshing every second, ${seconds} s each`, { timeout: (seconds * 2 + 60) * 1000 }, async () => {
        const token = "cpu-token";
        // The default poll interval, as a deployed server runs.
        const server = await startServer({ token, pollMs: 2000 });
        try {
            const idle = await measure(server, seconds);
            const opened = await openPage(server, "/?refresh=1");
            await opened.page.fill("#token", token);
            await opened.page.press("#token", "Enter");
            await opened.page.waitForSelector("#rate-requests", { timeout: TIMEOUT });
            const open = await measure(server, seconds);
            const requests = await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.text());
            await opened.close();
            const line = (route) => requests.split("\n").filter((l) => l.startsWith(`modelhost_http_requests_total{route="${route}"`)).join("\n  ");
            console.log(`idle:          ${(idle * 100).toFixed(3)} % of a CPU`);
            console.log(`console open:  ${(open * 100).toFixed(3)} % of a CPU`);
            console.log(`difference:    ${((open - idle) * 100).toFixed(3)} % of a CPU`);
            console.log(`  ${line("/metrics")}\n  ${line("/model")}\n  ${line("/monitoring/drift")}\n  ${line("/monitoring/events")}`);
        } finally {
            await server.stop();
        }
    });
} else {
    test("the docs render every route of /openapi.json", async () => {
        const server = await startServer();
        try {
            const document = await (await fetch(`${server.url}/openapi.json`)).json();
            // Redoc's sidebar footer always asks for Redocly's logo from their CDN; the policy
            // blocks it before any request is made (so `offsite` never sees it), which is the
            // policy doing its work. Any other violation fails.
            const opened = await openPage(server, "/docs", ["https://cdn.redoc.ly/redoc/logo-mini.svg"]);
            const operations = Object.entries(document.paths).flatMap(([path, item]) =>
                Object.entries(item).map(([method, operation]) => ({ path, method, summary: operation.summary })));
            assert.ok(operations.length >= 20, `${operations.length} operations`);
            // Redoc gives every operation a heading with its summary and an endpoint panel with
            // its method and path.
            const shown = await until("Redoc's rendering", async () => {
                const body = await opened.page.locator("body").innerText();
                return body.includes(operations[operations.length - 1].summary) && body;
            });
            const headings = await opened.page.locator("h2").allInnerTexts();
            for (const { path, method, summary } of operations) {
                assert.ok(headings.some((h) => h.includes(summary)), `a heading for ${method.toUpperCase()} ${path}: ${summary}`);
                assert.ok(shown.includes(path), `${method.toUpperCase()} ${path} is shown`);
            }
            if (SCREENSHOTS) await opened.page.screenshot({ path: join(ROOT, "docs/docs.png") });
            await opened.close();
        } finally {
            await server.stop();
        }
    });

    test("the console shows the live model, follows a hot swap and a refusal without a reload, and predicts", async () => {
        const server = await startServer();
        try {
            const opened = await openPage(server, "/?refresh=1");
            const { page } = opened;
            const model = await (await fetch(`${server.url}/model`)).json();
            await until("the serving version", async () => (await text(page, "#serving")).includes(model.version));
            assert.ok((await text(page, "#model-body")).includes(model.sha256));
            assert.equal(await page.locator("#token-panel").isHidden(), true, "no token is asked for");
            await until("the history table", async () => (await text(page, "#history-body tbody")).includes("● live"));

            // The form: reached, filled and sent with the keyboard only.
            await page.locator("#refresh").focus();
            const fields = model.schema.map((f) => f.name);
            const typed = { tenure_months: "7", num_complaints: "4", avg_session_minutes: "21.5", plan_type: "premium", region: "EU" };
            let reached = 0;
            for (let tabs = 0; tabs < 40 && reached < fields.length; tabs += 1) {
                await page.keyboard.press("Tab");
                const focused = await page.evaluate(() => document.activeElement?.id || "");
                const name = focused.replace(/^feature-/, "");
                if (focused.startsWith("feature-") && typed[name] !== undefined) {
                    if (await page.evaluate(() => document.activeElement.tagName) === "SELECT") {
                        // A select is chosen by typing its option's first letters.
                        await page.keyboard.type(typed[name]);
                    } else {
                        await page.keyboard.press("ControlOrMeta+A");
                        await page.keyboard.type(typed[name]);
                    }
                    reached += 1;
                }
            }
            assert.equal(reached, fields.length, "every field is reached by Tab");
            await page.keyboard.press("Tab");
            assert.equal(await page.evaluate(() => document.activeElement?.id), "predict-submit", "Tab then reaches the button");
            await page.keyboard.press("Enter");
            const expected = await predictDirectly(server, {
                tenure_months: 7, num_complaints: 4, avg_session_minutes: 21.5, plan_type: "premium", region: "EU",
            });
            await until("the form's answer", async () => (await text(page, "#predict-result")).includes("probability"));
            assert.equal(await text(page, "#prediction-probability"), String(expected.probability));
            assert.equal(await text(page, "#prediction-version"), model.version);

            // Some traffic, so the rates and drift have something to show.
            await until("a request rate", async () => {
                await predictDirectly(server, CUSTOMER);
                return Number(await text(page, "#rate-requests")) > 0;
            });
            await until("the drift report", async () => (await text(page, "#drift-body")).includes("tenure_months"));

            // A hot swap: a newly trained model is promoted; the page follows without a reload.
            const trained = JSON.parse(server.run("train", "--synthetic", "600", "--seed", "7", "--json"));
            assert.equal(trained.promoted, true);
            await until("the swapped-in version", async () => (await text(page, "#serving")).includes(trained.version));
            await until("the swap in the events", async () => (await text(page, "#events-body")).includes(`${model.version} → ${trained.version}`));
            await until("the new version in the history", async () => (await text(page, "#history-body")).includes(trained.version));

            if (SCREENSHOTS) {
                // A richer history for the picture: a run the gate refuses and a rollback.
                try {
                    server.run("train", "--synthetic", "600", "--seed", "11", "--gate-f1", "0.99");
                } catch (refused) {
                    assert.equal(refused.status, 4, "the gate refuses (exit status 4)");
                }
                server.run("rollback");
                await until("the rollback", async () => (await text(page, "#serving")).includes(model.version));
            }

            // A refused candidate: its reason is shown, the serving model stays.
            const serving = (await (await fetch(`${server.url}/model`)).json()).version;
            copyFileSync(HOSTILE, join(server.registry, "churn/model.wasm"));
            const refused = await until("the refusal", async () => (await (await fetch(`${server.url}/model`)).json()).last_error);
            await until("the refusal in the events", async () => (await text(page, "#events-body")).includes(refused));
            assert.ok((await text(page, "#model-body")).includes(refused), "the model panel names the refusal");
            assert.ok((await text(page, "#serving")).includes(serving), "the serving model stays");

            if (SCREENSHOTS) {
                await page.locator("#history-body").scrollIntoViewIfNeeded();
                await page.screenshot({ path: join(ROOT, "docs/console.png"), fullPage: true });
            }
            await opened.close();
        } finally {
            await server.stop();
        }
    });

    test("with MONITORING_TOKEN the console asks for the token and shows no guarded data without it", async () => {
        const token = `browser-${Math.random().toString(36).slice(2)}`;
        const server = await startServer({ token });
        try {
            const opened = await openPage(server, "/?refresh=1");
            const { page } = opened;
            const model = await (await fetch(`${server.url}/model`)).json();
            await until("the token form", async () => page.locator("#token-panel").isVisible());
            await until("the serving version", async () => (await text(page, "#serving")).includes(model.version));
            for (const section of ["#traffic-body", "#drift-body", "#history-body", "#events-body"]) {
                assert.equal(await text(page, section), "Needs the monitoring token (see above).", section);
            }
            for (const guarded of ["#rate-requests", "#drift-summary", "#history-body table", "#events-body table"]) {
                assert.equal(await page.locator(guarded).count(), 0, `${guarded} is not shown`);
            }
            // The public parts work without it.
            await page.locator("#predict-submit").press("Enter");
            const expected = await predictDirectly(server, Object.fromEntries(model.schema.map((f) =>
                [f.name, f.kind === "categorical" ? f.vocabulary[0] : f.kind === "integer" ? Math.round(model.training.numeric[f.name].mean) : Number(model.training.numeric[f.name].mean.toFixed(2))])));
            await until("the form's answer", async () => (await text(page, "#prediction-probability")) === String(expected.probability));

            // A wrong token is refused, the right one shows everything.
            await page.locator("#token").fill("wrong");
            await page.locator("#token").press("Enter");
            await until("the refusal of a wrong token", async () => (await text(page, "#token-message")).includes("refused"));
            assert.equal(await page.locator("#drift-summary").count(), 0);
            await page.locator("#token").fill(token);
            await page.locator("#token").press("Enter");
            await until("the drift report", async () => page.locator("#drift-summary").isVisible());
            await until("the history", async () => (await text(page, "#history-body")).includes(model.version));
            await until("the events", async () => (await text(page, "#events-body")).includes(model.version));
            await until("a request rate", async () => (await page.locator("#rate-requests").count()) > 0);
            // The token goes only to the monitoring routes, as a bearer header.
            const seen = await page.evaluate(() => sessionStorage.length);
            assert.equal(seen, 1);
            await opened.close();
        } finally {
            await server.stop();
        }
    });
}
