import { describe, expect, it } from "vitest";
import { ReplayGuard } from "../../cloud/src/replay.js";

const sig = (i: number) => i.toString(16).padStart(64, "0");

describe("ReplayGuard", () => {
  it("accepts a signature once within the window", () => {
    const g = new ReplayGuard(60, 100);
    expect(g.check(sig(1), 1000, 1000)).toBe("fresh");
    expect(g.check(sig(1), 1000, 1030)).toBe("replayed");
    expect(g.check(sig(2), 1000, 1030)).toBe("fresh");
  });

  it("says whether a signature was accepted, without recording one (the check made before the body is read)", () => {
    const g = new ReplayGuard(60, 100);
    expect(g.seen(sig(1), 1000)).toBe(false);
    expect(g.size).toBe(0);
    g.check(sig(1), 1000, 1000);
    expect(g.seen(sig(1), 1030)).toBe(true);
    expect(g.seen(sig(1), 1061)).toBe(false); // its timestamp left the window
    expect(g.seen(sig(2), 1030)).toBe(false);
    expect(g.size).toBe(1);
  });

  it("forgets signatures whose timestamp has left the window", () => {
    const g = new ReplayGuard(60, 100);
    g.check(sig(1), 1000, 1000);
    g.check(sig(2), 1050, 1050);
    expect(g.check(sig(3), 1061, 1061)).toBe("fresh");
    expect(g.size).toBe(2); // sig(1) expired at 1060
  });

  it("refuses new calls when full of live entries instead of forgetting live ones", () => {
    const g = new ReplayGuard(60, 3);
    for (let i = 0; i < 3; i++) expect(g.check(sig(i), 1000, 1000)).toBe("fresh");
    expect(g.check(sig(9), 1000, 1001)).toBe("full");
    expect(g.check(sig(0), 1000, 1001)).toBe("replayed");
    // once they expire there is room again
    expect(g.check(sig(9), 1100, 1100)).toBe("fresh");
    expect(g.size).toBe(1);
  });

  it("sweeps entries that arrived out of timestamp order", () => {
    const g = new ReplayGuard(60, 2);
    g.check(sig(1), 1060, 1000); // from the future: lives until 1120
    g.check(sig(2), 1000, 1000); // lives until 1060
    expect(g.check(sig(3), 1070, 1070)).toBe("fresh"); // the full sweep found sig(2) expired
    expect(g.check(sig(1), 1060, 1070)).toBe("replayed");
  });
});
