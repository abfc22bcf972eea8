import { describe, expect, it } from "vitest";
import { lastDays, usageByMethod } from "./admin/Usage";

describe("usage by method and day", () => {
  it("lists the last days, oldest first", () => {
    expect(lastDays(3, new Date("2026-12-05T10:00:00Z"))).toEqual(["2026-12-03", "2026-12-04", "2026-12-05"]);
  });
  it("groups rows into one series per method, busiest first", () => {
    const days = ["2026-12-04", "2026-12-05"];
    const rows = [
      { period: "2026-12-04T00:00:00Z", method: "admin.users.list", calls: 2, errors: 0, duration_ms_total: 4 },
      { period: "2026-12-05T00:00:00Z", method: "admin.users.list", calls: 3, errors: 1, duration_ms_total: 6 },
      { period: "2026-12-05T00:00:00Z", method: "mail.threads.list", calls: 1, errors: 0, duration_ms_total: 1 },
      { period: "2026-11-01T00:00:00Z", method: "mail.threads.list", calls: 9, errors: 0, duration_ms_total: 9 },
    ];
    const out = usageByMethod(rows, days);
    expect(out.map((s) => s.method)).toEqual(["mail.threads.list", "admin.users.list"]);
    expect(out[1]).toEqual({ method: "admin.users.list", calls: 5, errors: 1, avg_ms: 2, perDay: [2, 3] });
    expect(out[0].perDay).toEqual([0, 1]); // a period outside the days counts in the total only
    expect(out[0].calls).toBe(10);
  });
});
