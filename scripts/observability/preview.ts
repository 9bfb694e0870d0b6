// `npm run dashboards:preview`: draws each dashboard's panels from Prometheus results recorded during a real
// run and saves one PNG per dashboard row (one for a dashboard without rows) under docs/dashboards/. The
// StegoCluster overview comes from the failover scenario of live.test.ts (docs/dashboards/failover-recording.json;
// re-record with `npm run dashboards:record`), the operator dashboard from operator-dashboard.itest.ts on a
// real kube-apiserver (docs/dashboards/operator-recording.json; re-record with STEGO_RECORD_OPERATOR_DASHBOARD,
// see docs/observability.md). Charts are uPlot in Debian's headless Chromium, driven by playwright-core;
// nothing is fetched from the network.
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { dashboards } from './dashboards.js';
import { ROOT } from './generate.js';
import type { Recording } from './prometheus.js';

export const RECORDING = join(ROOT, 'docs/dashboards/failover-recording.json');
export const OPERATOR_RECORDING = join(ROOT, 'docs/dashboards/operator-recording.json');
/** The recording each dashboard is drawn from. */
export const RECORDINGS: Record<string, string> = { 'stegocluster-overview.json': RECORDING, 'stego-operator.json': OPERATOR_RECORDING };
export const PREVIEW_DIR = join(ROOT, 'docs/dashboards');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

interface PanelView {
  title: string;
  type: string;
  unit: string;
  w: number;
  max?: number;
  textMode?: string;
  noValue?: string;
  series: { label: string; values: (number | null)[] }[];
}

interface RowView {
  title: string;
  slug: string;
  panels: PanelView[];
}

function legend(format: string, metric: Record<string, string>): string {
  const s = format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k: string) => metric[k] ?? '');
  return s.trim() || Object.entries(metric).map(([k, v]) => `${k}=${v}`).join(', ') || 'value';
}

/** Rows of one dashboard with each panel's recorded series on the recording's time grid. */
export function rowViews(file: string, d: Dashboard, rec: Recording): RowView[] {
  const n = Math.round((rec.end - rec.start) / rec.step) + 1;
  const rows: RowView[] = [];
  for (const p of d.panels ?? []) {
    // panels before the first row (a dashboard without rows): one row named after the dashboard, no slug
    if (p.type !== 'row' && rows.length === 0) rows.push({ title: d.title ?? '', slug: '', panels: [] });
    if (p.type === 'row') {
      const title = p.title ?? '';
      rows.push({ title, slug: title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, ''), panels: [] });
      continue;
    }
    const panel = p as { title?: string; type: string; gridPos?: { w: number }; fieldConfig?: { defaults?: { unit?: string; max?: number; noValue?: string } }; options?: { textMode?: string } };
    const view: PanelView = {
      title: panel.title ?? '',
      type: panel.type,
      unit: panel.fieldConfig?.defaults?.unit ?? '',
      w: panel.gridPos?.w ?? 8,
      series: [],
    };
    if (panel.fieldConfig?.defaults?.max !== undefined) view.max = panel.fieldConfig.defaults.max;
    if (panel.fieldConfig?.defaults?.noValue !== undefined) view.noValue = panel.fieldConfig.defaults.noValue;
    if (panel.options?.textMode !== undefined) view.textMode = panel.options.textMode;
    for (const r of rec.panels.filter((x) => x.dashboard === file && x.panel === view.title)) {
      for (const s of r.result) {
        const values: (number | null)[] = new Array<number | null>(n).fill(null);
        for (const [t, v] of s.values ?? []) {
          const i = Math.round((t - rec.start) / rec.step);
          const x = Number(v);
          if (i >= 0 && i < n && Number.isFinite(x)) values[i] = x;
        }
        view.series.push({ label: legend(r.legend, s.metric), values });
      }
    }
    rows.at(-1)?.panels.push(view);
  }
  return rows;
}

const PAGE_SCRIPT = String.raw`
const PALETTE = ['#7eb26d', '#eab839', '#6ed0e0', '#ef843c', '#e24d42', '#1f78c1', '#ba43a9', '#705da0', '#508642', '#cca300'];
function fmt(unit, v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  switch (unit) {
    case 's': return a === 0 ? '0' : a < 1e-3 ? (v * 1e6).toFixed(0) + ' µs' : a < 1 ? (v * 1e3).toFixed(a < 0.01 ? 1 : 0) + ' ms' : v.toFixed(2) + ' s';
    case 'bytes': case 'Bps': {
      const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let x = v, i = 0;
      while (Math.abs(x) >= 1024 && i < u.length - 1) { x /= 1024; i++; }
      return (i === 0 ? x.toFixed(Math.abs(x) < 10 && x !== 0 ? 1 : 0) : x.toFixed(1)) + ' ' + u[i] + (unit === 'Bps' ? '/s' : '');
    }
    case 'percentunit': return (v * 100).toFixed(a < 0.1 ? 1 : 0) + '%';
    case 'reqps': return v.toFixed(a < 10 ? 2 : 0) + ' req/s';
    case 'ops': return v.toFixed(a < 10 ? 2 : 0) + '/s';
    default: return a >= 1000 ? v.toFixed(0) : Number(v.toPrecision(3)).toString();
  }
}
function drawEvents(u, events) {
  const ctx = u.ctx; ctx.save();
  ctx.font = (11 * devicePixelRatio) + 'px sans-serif';
  events.forEach((e, i) => {
    const x = Math.round(u.valToPos(e.t, 'x', true));
    ctx.strokeStyle = 'rgba(240,240,240,0.45)'; ctx.setLineDash([4, 4]); ctx.lineWidth = devicePixelRatio;
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.fillStyle = '#d8d9da'; ctx.fillText(String(i + 1), x + 3 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
  });
  ctx.restore();
}
function render(data) {
  const root = document.getElementById('root');
  const h = document.createElement('h2'); h.textContent = data.row.slug ? data.dashboard + ' › ' + data.row.title : data.dashboard; root.appendChild(h);
  const sub = document.createElement('div'); sub.className = 'events';
  sub.textContent = data.events.map((e, i) => '┆' + (i + 1) + ' +' + Math.round(e.t - data.start) + ' s ' + e.label).join('    ');
  root.appendChild(sub);
  const grid = document.createElement('div'); grid.className = 'grid'; root.appendChild(grid);
  const xs = []; for (let i = 0; i < data.n; i++) xs.push(data.start + i * data.step);
  for (const p of data.row.panels) {
    const box = document.createElement('div'); box.className = 'panel'; box.style.width = (p.w / 24 * 1440 - 12) + 'px';
    const t = document.createElement('div'); t.className = 'title'; t.textContent = p.title; box.appendChild(t);
    grid.appendChild(box);
    if (p.type === 'stat') {
      // like Grafana's instant query at the end of the range: series with a value at the last points only
      const last = p.series.map((s) => { for (let i = s.values.length - 1; i >= s.values.length - 3 && i >= 0; i--) if (s.values[i] !== null) return { label: s.label, v: s.values[i] }; return null; }).filter(Boolean);
      const v = document.createElement('div'); v.className = 'stat';
      if (last.length === 0) v.textContent = p.noValue || 'No data';
      else v.textContent = p.textMode === 'name' ? last.map((l) => l.label).join(', ') : last.map((l) => fmt(p.unit, l.v)).join(', ');
      box.appendChild(v);
      continue;
    }
    if (p.series.length === 0) {
      const v = document.createElement('div'); v.className = 'nodata'; v.textContent = 'No data (metric awaiting wiring or not produced in this run)';
      box.appendChild(v);
      continue;
    }
    const opts = {
      width: p.w / 24 * 1440 - 24, height: 210,
      legend: { show: true, live: false },
      cursor: { show: false },
      scales: { x: { time: true }, y: p.max !== undefined ? { range: (u, mn, mx) => [Math.min(0, mn), Math.max(p.max, mx)] } : { range: (u, mn, mx) => [Math.min(0, mn), mx > 0 ? mx * 1.1 : 1] } },
      axes: [
        { stroke: '#aaa', grid: { stroke: '#333' }, ticks: { stroke: '#333' }, values: (u, vals) => vals.map((v) => '+' + Math.round(v - data.start) + 's') },
        { stroke: '#aaa', grid: { stroke: '#333' }, ticks: { stroke: '#333' }, size: 86, values: (u, vals) => vals.map((v) => fmt(p.unit, v)) },
      ],
      series: [{}].concat(p.series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false, points: { show: false } }))),
      hooks: { draw: [(u) => drawEvents(u, data.events)] },
    };
    new uPlot(opts, [xs].concat(p.series.map((s) => s.values)), box);
  }
}
`;

const CSS = `
body { margin: 0; background: #111217; color: #ccccdc; font: 13px sans-serif; }
#root { width: 1440px; padding: 8px; }
h2 { font-size: 16px; margin: 4px 6px; color: #fff; }
.events { margin: 0 6px 6px; color: #9fa7b3; font-size: 11px; }
.grid { display: flex; flex-wrap: wrap; }
.panel { background: #181b1f; border: 1px solid #2c3235; border-radius: 3px; margin: 4px; padding: 6px; box-sizing: border-box; }
.title { font-weight: 600; margin-bottom: 4px; color: #fff; }
.stat { font-size: 30px; font-weight: 600; text-align: center; padding: 14px 0; color: #73bf69; }
.nodata { color: #777; padding: 90px 0; text-align: center; }
.u-legend { font-size: 11px; color: #ccccdc; text-align: left; }
.u-legend .u-marker { width: 10px; height: 3px; }
`;

/** Draws the rows of the named dashboards (all by default) from one recording. */
export async function renderPreviews(rec: Recording, files: string[] = Object.keys(dashboards())): Promise<string[]> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (or set CHROMIUM_BIN)`);
  const uplotJs = readFileSync(join(ROOT, 'node_modules/uplot/dist/uPlot.iife.min.js'), 'utf8');
  const uplotCss = readFileSync(join(ROOT, 'node_modules/uplot/dist/uPlot.min.css'), 'utf8');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  const written: string[] = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1460, height: 900 }, deviceScaleFactor: 1 });
    // nothing leaves the machine: every request the page might make is refused
    await page.route('**/*', (route) => route.abort());
    mkdirSync(PREVIEW_DIR, { recursive: true });
    for (const [file, d] of Object.entries(dashboards()).filter(([f]) => files.includes(f))) {
      const base = file.replace(/\.json$/, '');
      for (const row of rowViews(file, d, rec)) {
        const data = { dashboard: d.title, row, events: rec.events, start: rec.start, step: rec.step, n: Math.round((rec.end - rec.start) / rec.step) + 1 };
        await page.setContent(`<!doctype html><html><head><style>${uplotCss}${CSS}</style></head><body><div id="root"></div></body></html>`);
        await page.addScriptTag({ content: uplotJs });
        await page.addScriptTag({ content: PAGE_SCRIPT });
        await page.evaluate((json) => (globalThis as unknown as { render: (d: unknown) => void }).render(JSON.parse(json)), JSON.stringify(data));
        const out = join(PREVIEW_DIR, row.slug ? `${base}-${row.slug}.png` : `${base}.png`);
        await page.locator('#root').screenshot({ path: out });
        written.push(out);
      }
    }
  } finally {
    await browser.close();
  }
  return written;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // `preview.js [recording.json dashboard.json…]` draws those dashboards from that recording; no argument
  // draws every dashboard from its own recording
  const jobs = process.argv[2] ? [[process.argv[2], process.argv.slice(3)] as const] : Object.entries(RECORDINGS).map(([dash, file]) => [file, [dash]] as const);
  for (const [file, dash] of jobs) {
    if (!existsSync(file)) {
      console.error(`no recording at ${file}: see docs/dashboards/README.md to record it (needs the Prometheus build)`);
      process.exit(1);
    }
    const rec = JSON.parse(readFileSync(file, 'utf8')) as Recording;
    for (const out of await renderPreviews(rec, dash.length > 0 ? [...dash] : undefined)) console.log(`wrote ${out.slice(ROOT.length)}`);
  }
}
