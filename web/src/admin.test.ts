import { describe, expect, it } from "vitest";
import { lastDays, usageByMethod } from "./admin/Usage";
import { checkSummary, findCheck, type DnsCheck } from "./admin/Domains";
import { nextSort } from "./admin/hooks";

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

describe("DNS check", () => {
  const c = (name: string, status: DnsCheck["status"], expected = "v"): DnsCheck =>
    ({ name, type: "TXT", expected, found: [], status, detail: "" });
  it("summarises the statuses", () => {
    expect(checkSummary([c("a.", "ok"), c("b.", "missing"), c("c.", "different"), c("d.", "error")]))
      .toBe("1 of 4 published, 1 different, 1 missing, 1 without an answer");
    expect(checkSummary([c("a.", "ok")])).toBe("1 of 1 published");
  });
  it("finds the check of a record by name, type and value", () => {
    const checks = [c("x.", "ok", "one"), c("x.", "missing", "two")];
    expect(findCheck(checks, { name: "x.", type: "TXT", value: "two" })?.status).toBe("missing");
    expect(findCheck(checks, { name: "x.", type: "MX", value: "two" })).toBeUndefined();
  });
});

describe("server-side sorting", () => {
  it("a header click sorts ascending, then descending, then ascending", () => {
    expect(nextSort("", "name")).toBe("name");
    expect(nextSort("name", "name")).toBe("-name");
    expect(nextSort("-name", "name")).toBe("name");
    expect(nextSort("-created_at", "name")).toBe("name");
  });
});
