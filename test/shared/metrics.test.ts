import { describe, expect, it } from "vitest";
import { Registry } from "@fogline/shared/metrics";

describe("metrics registry (Prometheus text format)", () => {
  it("renders counters with labels, HELP and TYPE", () => {
    const r = new Registry();
    const c = r.counter("x_total", "Things.", ["route", "status"]);
    c.inc({ route: "/v1/classify", status: 200 });
    c.inc({ route: "/v1/classify", status: 200 }, 2);
    c.inc({ route: "/v1/classify", status: 400 });
    c.inc({ route: "/v1/classify", status: 400 }, -5); // ignored: counters only go up
    expect(r.render()).toBe(
      ['# HELP x_total Things.', "# TYPE x_total counter", 'x_total{route="/v1/classify",status="200"} 3', 'x_total{route="/v1/classify",status="400"} 1', ""].join("\n"),
    );
    expect(c.value({ route: "/v1/classify", status: 200 })).toBe(3);
  });

  it("renders cumulative histogram buckets, +Inf, sum and count", () => {
    const r = new Registry();
    const h = r.histogram("lat_seconds", "Latency.", ["model"], [0.1, 1]);
    h.observe({ model: "m" }, 0.05);
    h.observe({ model: "m" }, 0.5);
    h.observe({ model: "m" }, 5);
    h.observe({ model: "m" }, NaN); // ignored
    const text = r.render();
    expect(text).toContain('lat_seconds_bucket{model="m",le="0.1"} 1');
    expect(text).toContain('lat_seconds_bucket{model="m",le="1"} 2');
    expect(text).toContain('lat_seconds_bucket{model="m",le="+Inf"} 3');
    expect(text).toContain('lat_seconds_sum{model="m"} 5.55');
    expect(text).toContain('lat_seconds_count{model="m"} 3');
  });

  it("escapes label values and refreshes gauges at scrape time", () => {
    const r = new Registry();
    r.counter("c_total", "C.", ["v"]).inc({ v: 'a"b\\c\nd' });
    let n = 0;
    r.gauge("g", "G.", [], (g) => g.set(undefined, ++n));
    expect(r.render()).toContain('c_total{v="a\\"b\\\\c\\nd"} 1');
    expect(r.render()).toContain("g 2");
  });

  it("caps the number of series per metric", () => {
    const c = new Registry().counter("many_total", "Many.", ["k"]);
    for (let i = 0; i < 5000; i++) c.inc({ k: i });
    expect(c.render().split("\n").length).toBe(2 + 1000);
  });

  it("refuses a metric registered twice", () => {
    const r = new Registry();
    r.counter("dup_total", "D.");
    expect(() => r.counter("dup_total", "D.")).toThrow(/twice/);
  });
});
