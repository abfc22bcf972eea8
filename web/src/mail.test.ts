import { describe, expect, it } from "vitest";
import { newMailNotice, noticeChannel } from "./lib";
import { customSnooze, localInputValue } from "./mail/ThreadList";
import { editedEmails, type ContactEmail } from "./mail/Contacts";
import { PREVIEW_MAX_BYTES, TEXT_PREVIEW_CHARS, previewKind, previewText } from "./mail/preview";

describe("custom snooze", () => {
  const now = new Date(2026, 11, 5, 18, 30); // local time
  it("reads a datetime-local value as local time", () => {
    expect(customSnooze("2026-12-06T08:15", now)).toBe(new Date(2026, 11, 6, 8, 15).toISOString());
    expect(customSnooze("2026-12-06T08:15:30", now)).toBe(new Date(2026, 11, 6, 8, 15, 30).toISOString());
  });
  it("refuses the past, now, and what is not a date and time", () => {
    expect(customSnooze("2026-12-05T18:30", now)).toBeNull();
    expect(customSnooze("2026-12-04T09:00", now)).toBeNull();
    for (const bad of ["", "tomorrow", "2026-12-06", "2026-13-45T99:99", "2026-12-06T08:15Z"]) {
      expect(customSnooze(bad, now)).toBeNull();
    }
  });
  it("writes the input's value back to the minute", () => {
    expect(localInputValue(new Date(2026, 0, 2, 3, 4, 59))).toBe("2026-01-02T03:04");
    expect(customSnooze(localInputValue(new Date(2026, 11, 7, 9, 5)), now)).toBe(new Date(2026, 11, 7, 9, 5).toISOString());
  });
});

describe("new mail notices", () => {
  it("tells only of a growing unread count after a first load", () => {
    expect(newMailNotice(undefined, 4)).toBeNull();
    expect(newMailNotice(4, 4)).toBeNull();
    expect(newMailNotice(4, 2)).toBeNull();
    expect(newMailNotice(2, 3)).toBe("New mail: 1 new conversation in the inbox");
    expect(newMailNotice(0, 5)).toBe("New mail: 5 new conversations in the inbox");
  });
  it("picks the channel the settings and the browser allow", () => {
    const on = { new_mail: true, sound: false, desktop: true };
    expect(noticeChannel({ ...on, new_mail: false }, "granted", true)).toBe("none");
    expect(noticeChannel(on, "granted", true)).toBe("system");
    expect(noticeChannel(on, "granted", false)).toBe("toast"); // in view: the page says it
    expect(noticeChannel(on, "denied", true)).toBe("toast");
    expect(noticeChannel(on, "default", true)).toBe("toast");
    expect(noticeChannel(on, "unsupported", true)).toBe("toast");
    expect(noticeChannel({ ...on, desktop: false }, "granted", true)).toBe("toast");
  });
});

describe("editing a contact", () => {
  const key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nx\n-----END PGP PUBLIC KEY BLOCK-----";
  const email = (address: string, public_key: string | null = null, fingerprint: string | null = null): ContactEmail =>
    ({ address, public_key, fingerprint, key_user_ids: null, key_expires_at: null });
  it("keeps the stored key while the address stays, and the other addresses as they are", () => {
    const current = [email("bob@example.org", key, "AB".repeat(20)), email("bob@home.example", null, "CD".repeat(20)), email("b@x.example")];
    expect(editedEmails(current, " Bob@Example.org ", "", null)).toEqual([
      { address: "Bob@Example.org", public_key: key },
      { address: "bob@home.example", fingerprint: "CD".repeat(20) },
      { address: "b@x.example" },
    ]);
  });
  it("drops the old key with a new address; a pasted or found key wins", () => {
    const current = [email("bob@example.org", key, "AB".repeat(20))];
    expect(editedEmails(current, "robert@example.org", "", null)).toEqual([{ address: "robert@example.org" }]);
    expect(editedEmails(current, "bob@example.org", "", "EF".repeat(20))).toEqual([{ address: "bob@example.org", fingerprint: "EF".repeat(20) }]);
    expect(editedEmails(current, "bob@example.org", ` ${key} `, "EF".repeat(20))).toEqual([{ address: "bob@example.org", public_key: key }]);
    expect(editedEmails([], "new@example.org", "", null)).toEqual([{ address: "new@example.org" }]);
  });
});

describe("attachment previews", () => {
  it("previews raster images, PDF and plain text; never SVG or HTML", () => {
    expect(previewKind("image/png", 10)).toBe("image");
    expect(previewKind("IMAGE/JPEG; name=x.jpg", 10)).toBe("image");
    expect(previewKind("application/pdf", 10)).toBe("pdf");
    expect(previewKind("text/plain; charset=utf-8", 10)).toBe("text");
    expect(previewKind("text/csv", 10)).toBe("text");
    for (const type of ["image/svg+xml", "text/html", "application/xhtml+xml", "application/octet-stream", "application/zip", ""]) {
      expect(previewKind(type, 10)).toBeNull();
    }
  });
  it("downloads what is too large to fetch for a look", () => {
    expect(previewKind("image/png", PREVIEW_MAX_BYTES)).toBe("image");
    expect(previewKind("image/png", PREVIEW_MAX_BYTES + 1)).toBeNull();
  });
  it("cuts long text and says so", () => {
    expect(previewText("short")).toBe("short");
    const long = "x".repeat(TEXT_PREVIEW_CHARS + 5);
    const shown = previewText(long);
    expect(shown.startsWith("x".repeat(TEXT_PREVIEW_CHARS) + "\n\n[… 5 more characters")).toBe(true);
  });
});
