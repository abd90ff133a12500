/**
 * The demo page at `/` in headless Chromium (Debian's `chromium`; .ci/run installs it), driven
 * with playwright-core against `npm start`: upload an image, see a label and the exit point, move
 * the threshold slider with the keyboard to force the cloud path and back, drop and generate
 * images, then check the phone layout, labels, CSP and that nothing is fetched from elsewhere.
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { base64ToBytes, DEFAULT_MODEL, vectorsFor } from "../shared/fixtures.js";
import { manifests } from "../models.generated.js";

const ARTIFACTS = resolve(import.meta.dirname, "../../test-artifacts");
const CHROMIUM = process.env.FOGLINE_CHROMIUM ?? "/usr/bin/chromium";
// Flags for a quiet, sandbox-free headless run in a container; a fresh profile each run.
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const labels = (manifests[DEFAULT_MODEL] as { labels: string[] }).labels;
const png = Buffer.from(base64ToBytes(vectorsFor(DEFAULT_MODEL).vectors.find((v) => v.contentType === "image/png")!.imageBase64));

// CI must run it (CI=true); elsewhere a missing browser skips it with the way to install one.
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser && process.env.CI) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or set FOGLINE_CHROMIUM)`);

describe.skipIf(!haveBrowser)("demo page in headless Chromium", () => {
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const foreign: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    profile = mkdtempSync(join(tmpdir(), "fogline-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1200, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    const origin = new URL(inject("edgeUrl")).origin;
    page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("response", (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
    page.on("request", (r) => {
      const u = new URL(r.url());
      if (!["blob:", "data:"].includes(u.protocol) && u.origin !== origin) foreign.push(r.url());
    });
    await page.goto(`${inject("edgeUrl")}/`);
    await page.waitForSelector("#model option", { state: "attached" });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const exitAt = () => page.getAttribute("#exit-badge", "data-at");
  /** Waits until an answer computed with this threshold is shown. */
  const answeredWith = (threshold: string) =>
    page.waitForFunction((t) => document.querySelector("#gauge-text")?.textContent?.includes(`threshold ${t}`) && !document.querySelector("#result")?.hasAttribute("aria-busy"), threshold);

  it("classifies an uploaded image: a label and the exit point", async () => {
    await page.setInputFiles("#file", { name: "cat.png", mimeType: "image/png", buffer: png });
    await page.waitForSelector("#answer:not([hidden])");
    await page.waitForFunction(() => ["edge", "cloud"].includes(document.querySelector("#exit-badge")?.getAttribute("data-at") ?? ""));
    expect(labels).toContain(await page.textContent("#label"));
    expect(await page.textContent("#exit-badge")).toMatch(/answered (at the edge|in the cloud)/);
    expect(await page.locator("#top li").count()).toBe(Math.min(5, labels.length));
    expect(await page.textContent("#status")).toMatch(/answered/);
  });

  it("warns when the full network's answer is flagged out of distribution (examples/galaxies.jpg), and not for a cat photo", async () => {
    // through the full network (force cloud): the shipped cifar10's edge exit answers both images
    // confidently ("frog"), and its energy is under the edge threshold for the galaxies (docs/ood.md)
    await page.check("input[name=exit][value=cloud]");
    const examples = resolve(import.meta.dirname, "../../examples");
    const show = async (name: string) => {
      await page.setInputFiles("#file", { name, mimeType: "image/jpeg", buffer: readFileSync(join(examples, name)) });
      await page.waitForFunction(() => !document.querySelector("#result")?.hasAttribute("aria-busy") && document.querySelector("#status")?.textContent?.includes("answered"));
    };
    await show("galaxies.jpg");
    await page.waitForSelector("#ood:not([hidden])");
    expect(await page.textContent("#ood")).toMatch(/probably none of the model's 10 classes/);
    await page.screenshot({ path: join(ARTIFACTS, "demo-ood.png"), fullPage: true });
    await show("cat.jpg");
    await page.waitForSelector("#ood[hidden]", { state: "attached" });
    expect(await page.textContent("#label")).toBe("cat");
    expect(await exitAt()).toBe("cloud");
    await page.check("input[name=exit][value=auto]");
  });

  it("moves the threshold slider with the keyboard: top keeps it at the edge, 0 forces the cloud", async () => {
    await page.focus("#threshold");
    await page.keyboard.press("End");
    const max = await page.getAttribute("#threshold", "max");
    await answeredWith(Number(max).toFixed(3));
    expect(await exitAt()).toBe("edge");
    await page.screenshot({ path: join(ARTIFACTS, "demo-edge.png"), fullPage: true });

    await page.keyboard.press("Home");
    await answeredWith("0.000");
    expect(await exitAt()).toBe("cloud");
    expect(await page.textContent("#exit-badge")).toBe("answered in the cloud");
    expect(await page.textContent("#latency")).toMatch(/cloud hop/);
    expect(await page.textContent("#energy")).toMatch(/less/);
    await page.screenshot({ path: join(ARTIFACTS, "demo.png"), fullPage: true });

    await page.click("#threshold-reset");
    expect(await page.textContent("#threshold-value")).toMatch(/calibrated/);
  });

  it("takes a dropped image and a generated sample (keyboard: Enter on the button)", async () => {
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
      document.querySelector("#drop")!.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, png.toString("base64"));
    await page.waitForFunction(() => document.querySelector("#status")?.textContent?.includes("answered") && document.querySelector("#drop-text")?.textContent?.startsWith("dropped.png"));

    await page.focus("#sample");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector("#drop-text")?.textContent?.startsWith("a generated sample") && document.querySelector("#status")?.textContent?.includes("answered"));
    expect(labels).toContain(await page.textContent("#label"));
  });

  it("fits a phone's width and labels every control", async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(ARTIFACTS, "demo-phone.png"), fullPage: true });
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll("input, select, button"))
        .filter((el) => {
          const labelled = (el as HTMLInputElement).labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
          return !labelled && !(el.tagName === "BUTTON" && el.textContent?.trim());
        })
        .map((el) => el.outerHTML),
    );
    expect(unlabelled).toEqual([]);
  });

  it("loads nothing from another origin and raises no console or CSP error", () => {
    expect(foreign).toEqual([]);
    expect(problems).toEqual([]);
  });
});
