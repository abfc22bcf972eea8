import { describe, expect, it } from "vitest";
import { readCookie, withQuery } from "./api";
import { defuseAttributes } from "./sanitize";
import { snoozeUntil } from "./mail/ThreadList";
import { topMethods } from "./admin/Dashboard";
import { foldQuoted, formatBytes, pageLabel, quoteBody, replySubject, searchSuggestions, shortDate, splitAddresses } from "./lib";

describe("lib", () => {
  it("formats sizes", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(50 * 1024 * 1024)).toBe("50 MB");
    expect(formatBytes(null)).toBe("—");
  });
  it("dates today as a time, this year without the year", () => {
    const now = new Date("2026-06-10T12:00:00");
    expect(shortDate("2026-06-10T09:05:00", now)).toBe("09:05");
    expect(shortDate("2026-03-03T09:05:00", now)).toBe("3 Mar");
    expect(shortDate("2024-03-03T09:05:00", now)).toBe("3 Mar 2024");
    expect(shortDate("nonsense", now)).toBe("");
  });
  it("splits addresses outside quotes and angle brackets", () => {
    expect(splitAddresses('a@x.org, "Doe, John" <j@x.org>; b@y.org,')).toEqual(['a@x.org', '"Doe, John" <j@x.org>', 'b@y.org']);
    expect(splitAddresses("  ")).toEqual([]);
  });
  it("folds the quoted part of a reply", () => {
    const text = "Sounds good.\n\nOn Mon, Bob wrote:\n> the plan\n> more";
    expect(foldQuoted(text)).toEqual({ visible: "Sounds good.", quoted: "On Mon, Bob wrote:\n> the plan\n> more" });
    expect(foldQuoted("no quote here")).toEqual({ visible: "no quote here", quoted: "" });
    expect(foldQuoted("> only\n> quoted\n\nthen text").quoted).toBe("");
  });
  it("keeps one Re: in a reply's subject", () => {
    expect(replySubject("Plan")).toBe("Re: Plan");
    expect(replySubject("Re: RE: Fwd: Plan")).toBe("Re: Plan");
    expect(replySubject("Re: Plan", "Fwd")).toBe("Fwd: Plan");
  });
  it("quotes a body", () => {
    expect(quoteBody("Bob", "Monday", "hi\n\nbye")).toBe("\n\nOn Monday, Bob wrote:\n> hi\n>\n> bye\n");
  });
  it("suggests search operators and labels", () => {
    expect(searchSuggestions("report is:u")).toEqual(["report is:unread"]);
    expect(searchSuggestions("-has")).toEqual(["-has:attachment"]);
    expect(searchSuggestions("label:wo", ["Work", "inbox"])).toEqual(["label:Work"]);
    expect(searchSuggestions("")).toEqual([]);
  });
  it("labels a page", () => {
    expect(pageLabel(0, 50, 132)).toBe("1–50 of 132");
    expect(pageLabel(100, 32, 132)).toBe("101–132 of 132");
    expect(pageLabel(0, 0, 0)).toBe("0 of 0");
  });
  it("reads cookies and builds query strings", () => {
    expect(readCookie("a=1; mr_csrf=abc%3D; b=2", "mr_csrf")).toBe("abc=");
    expect(readCookie("a=1", "mr_csrf")).toBeNull();
    expect(withQuery("/users", { domain: "x.org", offset: 0, q: "", n: null })).toBe("/users?domain=x.org&offset=0");
  });
});

describe("sanitize", () => {
  it("defuses event handlers and styles before parsing, whatever separates them", () => {
    expect(defuseAttributes('<img src=x onerror="a()"><p style="x" ONCLICK=b>')).toBe(
      '<img src=x data-defused-onerror="a()"><p data-defused-style="x" data-defused-ONCLICK=b>',
    );
    expect(defuseAttributes('<img/onerror=a()><img src="x"onload="b">')).toBe(
      '<img/data-defused-onerror=a()><img src="x"data-defused-onload="b">',
    );
    expect(defuseAttributes("<p>set style = bold, onward = 1</p>")).toBe("<p>set style = bold, onward = 1</p>");
  });
});

describe("snooze", () => {
  it("ends three hours on, tomorrow at 8 or a week on at 8", () => {
    const now = new Date(2026, 5, 10, 14, 30);
    expect(new Date(snoozeUntil("hours", now)).getTime() - now.getTime()).toBe(3 * 3600_000);
    const tomorrow = new Date(snoozeUntil("tomorrow", now));
    expect([tomorrow.getDate(), tomorrow.getHours(), tomorrow.getMinutes()]).toEqual([11, 8, 0]);
    const week = new Date(snoozeUntil("week", now));
    expect([week.getDate(), week.getHours()]).toEqual([17, 8]);
  });
});

describe("usage", () => {
  it("sums calls per method over periods, busiest first", () => {
    const rows = [
      { period: "2026-11", method: "a", calls: 2, errors: 0 },
      { period: "2026-12", method: "b", calls: 5, errors: 1 },
      { period: "2026-12", method: "a", calls: 4, errors: 1 },
    ];
    expect(topMethods(rows).map((r) => [r.method, r.calls, r.errors])).toEqual([["a", 6, 1], ["b", 5, 1]]);
  });
});
