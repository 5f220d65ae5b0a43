import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { BlameObservation } from '../src/blame/blame.js';
import { formatFor } from '../src/commands/report.js';
import { tableChart } from '../src/report/chart.js';
import { renderChartSvg } from '../src/report/svg.js';
import type { RunResult } from '../src/run/types.js';
import { parseJson } from './helpers/cli.js';
import { repoRoot } from './helpers/constants.js';
import { logLines } from './helpers/evidence.js';
import { emptyUsersOutsideAnyRun } from './helpers/incident.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * The HTML post-mortem as a reader meets it: rendered by a real browser (Debian's chromium,
 * driven by playwright-core), with the verdict callout and the chart on screen, and not one
 * request leaving the page. The screenshot stays in test-output/ for a person to look at.
 */
const CHROMIUM = process.env.SAFE_RUN_CHROMIUM ?? '/usr/bin/chromium';
/** CI installs chromium (.ci/run) and sets this: there a missing browser is a failure, not a skip. */
const REQUIRED = !!(process.env.CI || process.env.SAFE_RUN_REQUIRE_BROWSER);
const OUTPUT = path.join(repoRoot(), 'test-output', 'report-html');

const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser && !REQUIRED)
  console.warn(`report-html: SKIPPED, no chromium at ${CHROMIUM} (apt-get install -y chromium, or set SAFE_RUN_CHROMIUM)`);
const describeInBrowser = haveBrowser || REQUIRED ? describe : describe.skip;

describe('report format', () => {
  it('takes the format from an .html output name unless --format says otherwise', () => {
    expect(formatFor(undefined, 'users.html')).toBe('html');
    expect(formatFor(undefined, 'users.HTM')).toBe('html');
    expect(formatFor(undefined, 'users.md')).toBe('md');
    expect(formatFor(undefined, undefined)).toBe('md');
    expect(formatFor('md', 'users.html')).toBe('md');
  });
});

describe('the chart of a long history', () => {
  const observation = (i: number, rows: number): BlameObservation => ({
    seq: i + 1,
    kind: 'snapshot',
    ts: new Date(Date.UTC(2026, 0, 1) + i * 600_000).toISOString(),
    runId: null,
    script: null,
    hash: 'h',
    rows,
    rowsKind: 'exact',
    counters: null,
    events: [],
  });

  it('draws a flat stretch from its ends, keeps every turn, and says what it left out', () => {
    // 2,000 cron snapshots: 8 rows, then 0 from the 1,500th on.
    const observations = Array.from({ length: 2000 }, (_, i) => observation(i, i < 1500 ? 8 : 0));
    const chart = tableChart({ table: 'public.users', observations, runs: [], changes: [] });
    expect(chart.points.map((p) => [p.label, p.rows])).toEqual([
      ['#1 snapshot', 8],
      ['#1500 snapshot', 8],
      ['#1501 snapshot', 0],
      ['#2000 snapshot', 0],
    ]);
    expect(chart.note).toContain('1996 of 2000 observations are not drawn');
    const svg = renderChartSvg(chart);
    expect(svg.match(/<circle class="point"/g)).toHaveLength(4);
    expect(svg).toContain('<title id="chart-title">Rows of users over time</title>');
  });
});

describeInBrowser('the HTML report in a browser', () => {
  let ws: Workspace;
  let browser: Browser;
  let committed: RunResult;
  let dryRun: RunResult;

  beforeAll(async () => {
    if (!haveBrowser) throw new Error(`No chromium at ${CHROMIUM}: .ci/run installs it (apt-get install -y chromium).`);
    mkdirSync(OUTPUT, { recursive: true });
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } }, backup: { scope: 'full' } });
    committed = parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--json', '--reason', 'INC-42']));
    dryRun = parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--dry-run', '--json']));
    expect([committed.status, dryRun.status]).toEqual(['committed', 'dry-run']);
    await emptyUsersOutsideAnyRun(ws.t.url);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // As root chromium refuses to start without --no-sandbox; the rest keeps it off a closed network.
      args: [
        ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await ws?.cleanup();
  });

  /** Opens the file and records every request the page makes besides loading itself. */
  async function open(file: string): Promise<{ page: Page; requests: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const self = pathToFileURL(file).href;
    const requests: string[] = [];
    page.on('request', (r) => {
      if (r.url() !== self) requests.push(r.url());
    });
    await page.goto(self, { waitUntil: 'load' });
    return { page, requests };
  }

  it('opens with the verdict callout and a chart of the runs, the dry run and the outside window, and fetches nothing', async () => {
    const file = path.join(ws.cwd, 'users.html');
    const written = await ws.cli(['report', 'users', '-o', file]);
    expect(written.exitCode).toBe(0);
    const html = readFileSync(file, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    // Nothing that could load from elsewhere, whatever the browser would do with it.
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\ssrc=|\shref=|url\(|@import/i);
    writeFileSync(path.join(OUTPUT, 'report.html'), html);

    const { page, requests } = await open(file);
    const callout = page.locator('aside.callout');
    await expect(callout.isVisible()).resolves.toBe(true);
    expect(await callout.getAttribute('class')).toContain('alarm');
    expect(await callout.innerText()).toContain('users lost rows outside any guarded run.');
    expect(await callout.innerText()).toContain('cleanup-invalid-sessions deleted 0 rows from users');
    // The callout is the first thing under the title.
    expect(await page.locator('main > :nth-child(2)').evaluate((el) => el.tagName)).toBe('ASIDE');

    const svg = page.locator('svg.chart');
    const box = await svg.boundingBox();
    expect(box!.width).toBeGreaterThan(600);
    expect(box!.height).toBeGreaterThan(150);
    // intent + post of the run, the dry run's intent, and now: the last point has 0 rows.
    expect(await svg.locator('circle.point').count()).toBeGreaterThanOrEqual(3);
    expect(await svg.locator('circle.point').last().locator('title').textContent()).toMatch(/^now at .*: 0 rows$/);
    const committedMark = svg.locator(`g.run.committed[data-run-id="${committed.runId}"]`);
    const dryMark = svg.locator(`g.run.dry-run[data-run-id="${dryRun.runId}"]`);
    expect(await committedMark.locator('text').textContent()).toBe('cleanup-invalid-sessions');
    expect(await dryMark.locator('text').textContent()).toBe('dry run: cleanup-invalid-sessions');
    // Dry runs are drawn differently: a dashed line, not the committed run's solid one.
    const dash = (mark: typeof dryMark) =>
      mark
        .locator('line')
        .first()
        .evaluate((el) => el.ownerDocument.defaultView!.getComputedStyle(el).strokeDasharray);
    expect(await dash(committedMark)).toBe('none');
    expect(await dash(dryMark)).not.toBe('none');
    const outside = svg.locator('g.outside');
    expect(await outside.count()).toBe(1);
    expect(await outside.locator('text').textContent()).toBe('outside any run: 8 → 0');
    expect((await outside.locator('rect').boundingBox())!.width).toBeGreaterThan(0);

    await page.screenshot({ path: path.join(OUTPUT, 'report.png'), fullPage: true });
    expect(existsSync(path.join(OUTPUT, 'report.png'))).toBe(true);
    expect(requests).toEqual([]);
    await page.close();
  });

  it('shows each entry with one timestamp, the same in the timeline and in the evidence', async () => {
    const file = path.join(ws.cwd, 'users-times.html');
    expect((await ws.cli(['report', 'users', '--format', 'html', '-o', file])).exitCode).toBe(0);
    const post = logLines(ws.evidenceDir)
      .map((l) => JSON.parse(l) as { seq: number; kind: string; ts: string; runId?: string })
      .find((e) => e.kind === 'run.post' && e.runId === committed.runId)!;
    const { page } = await open(file);
    const rowOf = async (heading: string, cell: string) =>
      page.locator(`h2:text-is("${heading}") ~ .table-wrap tr`, { hasText: cell }).first().locator('td').allInnerTexts();
    expect((await rowOf('Timeline', `#${post.seq} run.post`))[0]).toBe(post.ts);
    const cited = await rowOf('Evidence', `#${post.seq}`);
    expect(cited[0]).toBe(`#${post.seq}`);
    expect(cited[2]).toBe(post.ts);
    // The dry run is named as one in the timeline, not as "before cleanup-invalid-sessions".
    const dryRow = await page.locator('h2:text-is("Timeline") + .table-wrap tr', { hasText: dryRun.runId }).first().innerText();
    expect(dryRow).toContain(`before dry run of cleanup-invalid-sessions (${dryRun.runId})`);
    await page.close();
  });

  it('puts a run report under a callout that says it committed', async () => {
    const file = path.join(ws.cwd, 'run.html');
    expect((await ws.cli(['report', committed.runId, '-o', file])).exitCode).toBe(0);
    const { page, requests } = await open(file);
    const callout = page.locator('aside.callout');
    expect(await callout.getAttribute('class')).toContain('ok');
    expect(await callout.innerText()).toMatch(/^Committed\.\s+cleanup-invalid-sessions deleted \d+ rows from oidc_models/);
    await page.screenshot({ path: path.join(OUTPUT, 'run-report.png'), fullPage: true });
    expect(requests).toEqual([]);
    await page.close();
  });
});
