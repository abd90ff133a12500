/**
 * A small Prometheus registry (text exposition format 0.0.4) that both halves use: counters,
 * gauges and histograms with labels. Plain TypeScript, so it runs in workerd and Node alike.
 *
 * Label values come from our own code (route patterns, status codes, known model names, fixed
 * reason enums), never from raw client input; a per-metric series cap still bounds memory if a
 * caller gets that wrong (https://prometheus.io/docs/practices/naming/#labels).
 */
export type Labels = Record<string, string | number>;

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Seconds: 1 ms .. 10 s, enough resolution for a 2 s cloud timeout. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10] as const;

const MAX_SERIES = 1000;
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

abstract class Metric<S> {
  protected readonly series = new Map<string, { labels: Labels; state: S }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${name}`);
  }

  protected abstract fresh(): S;
  abstract readonly type: "counter" | "gauge" | "histogram";
  protected abstract lines(labels: Labels, state: S): string[];

  protected get(labels: Labels = {}): S | undefined {
    const key = this.labelNames.map((n) => String(labels[n] ?? "")).join("\u0000");
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= MAX_SERIES) return undefined; // drop rather than grow without bound
      const clean: Labels = {};
      for (const n of this.labelNames) clean[n] = String(labels[n] ?? "");
      s = { labels: clean, state: this.fresh() };
      this.series.set(key, s);
    }
    return s.state;
  }

  render(): string {
    const out = [`# HELP ${this.name} ${this.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, state } of this.series.values()) out.push(...this.lines(labels, state));
    return out.join("\n");
  }

  protected labelText(labels: Labels, extra?: [string, string]): string {
    const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(String(v))}"`);
    if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
    return parts.length ? `{${parts.join(",")}}` : "";
  }
}

export class Counter extends Metric<{ v: number }> {
  readonly type = "counter";
  protected fresh() {
    return { v: 0 };
  }
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) return; // counters only go up
    const s = this.get(labels);
    if (s) s.v += by;
  }
  /** Current value (tests). */
  value(labels?: Labels): number {
    return this.get(labels)?.v ?? 0;
  }
  protected lines(labels: Labels, s: { v: number }): string[] {
    return [`${this.name}${this.labelText(labels)} ${formatValue(s.v)}`];
  }
}

export class Gauge extends Metric<{ v: number }> {
  readonly type = "gauge";
  /** Optional: called at every scrape to refresh the value (e.g. process memory). */
  collect?: (g: Gauge) => void;
  protected fresh() {
    return { v: 0 };
  }
  set(labels: Labels | undefined, v: number): void {
    const s = this.get(labels);
    if (s) s.v = v;
  }
  override render(): string {
    this.collect?.(this);
    return super.render();
  }
  protected lines(labels: Labels, s: { v: number }): string[] {
    return [`${this.name}${this.labelText(labels)} ${formatValue(s.v)}`];
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramState> {
  readonly type = "histogram";
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[] = LATENCY_BUCKETS,
  ) {
    super(name, help, labelNames);
    if (labelNames.includes("le")) throw new Error('"le" is reserved for histogram buckets');
  }
  protected fresh(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }
  observe(labels: Labels | undefined, v: number): void {
    if (!Number.isFinite(v)) return;
    const s = this.get(labels);
    if (!s) return;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }
  /** Number of observations (tests). */
  count(labels?: Labels): number {
    return this.get(labels)?.count ?? 0;
  }
  protected lines(labels: Labels, s: HistogramState): string[] {
    const out = this.buckets.map((b, i) => `${this.name}_bucket${this.labelText(labels, ["le", formatValue(b)])} ${s.counts[i]}`);
    out.push(`${this.name}_bucket${this.labelText(labels, ["le", "+Inf"])} ${s.count}`);
    out.push(`${this.name}_sum${this.labelText(labels)} ${formatValue(s.sum)}`);
    out.push(`${this.name}_count${this.labelText(labels)} ${s.count}`);
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, { render(): string }>();

  private add<M extends { name: string; render(): string }>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }
  gauge(name: string, help: string, labelNames: readonly string[] = [], collect?: (g: Gauge) => void): Gauge {
    const g = this.add(new Gauge(name, help, labelNames));
    if (collect) g.collect = collect;
    return g;
  }
  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }
  /** The whole registry in Prometheus text format. */
  render(): string {
    return `${[...this.metrics.values()].map((m) => m.render()).join("\n")}\n`;
  }
}

/** The metrics both halves record for every request (see `observe` in http.ts). */
export interface HttpMetrics {
  registry: Registry;
  requests: Counter;
  duration: Histogram;
  errors: Counter;
}

export function httpMetrics(registry: Registry): HttpMetrics {
  return {
    registry,
    requests: registry.counter("fogline_http_requests_total", "HTTP requests by route pattern, method and status.", ["route", "method", "status"]),
    duration: registry.histogram("fogline_http_request_duration_seconds", "HTTP request duration by route pattern.", ["route"]),
    errors: registry.counter("fogline_http_errors_total", "Error responses by stable error code.", ["code"]),
  };
}
