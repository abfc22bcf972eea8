import { describe, expect, it } from "vitest";
import { lastDays, usageByMethod } from "./admin/Usage";
import { checkSummary, findCheck, type DnsCheck } from "./admin/Domains";
import { filterQuery, nextSort } from "./admin/hooks";
import { chunks, csvRecords, parseUsersCsv, planRows, type ImportResult } from "./admin/UserImport";
import { ApiError } from "./api";

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

describe("CSV import of users", () => {
  it("reads RFC 4180 records: quotes, commas and line breaks in quotes, CRLF, blank lines", () => {
    const text = 'email,display_name\r\na@x.org,"Doe, ""J"""\r\n\r\nb@x.org,"two\nlines"\n';
    expect(csvRecords(text)).toEqual([
      { line: 1, fields: ["email", "display_name"] },
      { line: 2, fields: ["a@x.org", 'Doe, "J"'] },
      { line: 4, fields: ["b@x.org", "two\nlines"] },
    ]);
  });
  it("turns rows into users: empty cells left out, megabytes, yes/no, ; lists", () => {
    const text = "\uFEFFEmail,password,quota_mb,enabled,forward_destinations\n" +
      "a@x.org,secret one,10,no,f@y.org; g@y.org\n" +
      "b@x.org,,,,\n" +
      "c@x.org,pw,lots,maybe\n" +
      ",pw\n";
    const { rows, errors } = parseUsersCsv(text);
    expect(rows).toEqual([
      { line: 2, user: { email: "a@x.org", password: "secret one", quota_bytes: 10485760, enabled: false, forward_destinations: ["f@y.org", "g@y.org"] } },
      { line: 3, user: { email: "b@x.org" } },
    ]);
    expect(errors).toEqual([
      { line: 4, message: 'quota_mb: "lots" is not a number of megabytes' },
      { line: 4, message: 'enabled: "maybe" is not yes or no' },
      { line: 5, message: "no email" },
    ]);
  });
  it("refuses unknown columns and a file without email", () => {
    expect(parseUsersCsv("mail,pw\na,b").errors.map((e) => e.message)).toEqual(["unknown column(s): mail, pw", "no email column"]);
    expect(parseUsersCsv("").errors[0].message).toBe("the file is empty");
  });
  it("plans create, update, skip and error per row from the dry run", () => {
    const rows = [{ line: 2, user: { email: "new@x.org" } }, { line: 3, user: { email: "Old@x.org" } }, { line: 4, user: { email: "same@x.org" } }];
    const result: ImportResult = {
      dry_run: true, created: 1, updated: 1, deleted: 0,
      changes: [
        { action: "create" as const, kind: "user", key: "new@x.org", changes: { password_hash: { old: null, new: "********" } } },
        { action: "update" as const, kind: "user", key: "old@x.org", changes: { display_name: { old: "A", new: "B" } } },
      ],
    };
    expect(planRows(rows, result, null)).toEqual([
      { line: 2, email: "new@x.org", action: "create", details: ["password_hash: ********"] },
      { line: 3, email: "Old@x.org", action: "update", details: ["display_name: A → B"] },
      { line: 4, email: "same@x.org", action: "skip", details: ["no change"] },
    ]);
    const problem = new ApiError({ status: 422, code: "invalid_params", errors: [{ loc: "document.users.1.password", message: "is required" } as never] });
    expect(planRows(rows, null, problem)[1]).toEqual({ line: 3, email: "Old@x.org", action: "error", details: ["password: is required"] });
  });
  it("chunks the real run", () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  });
});

describe("list filters", () => {
  it("sends the typed text trimmed and within the API's bound", () => {
    expect(filterQuery("  car ")).toBe("car");
    expect(filterQuery("   ")).toBe("");
    expect(filterQuery("x".repeat(400))).toHaveLength(320);
  });
});
