import { describe, expect, it } from "vitest";
import { ApiError } from "./api";
import { Draft, type DraftApi, type DraftFields } from "./mail/draft";
import { linkTarget, textToHtml } from "./mail/richtext";
import { looksArmored, shortFingerprint } from "./mail/Contacts";

const fields = (body: string): DraftFields => ({ to: ["b@x.org"], cc: [], subject: "Hi", body });

function fakeServer() {
  const calls: string[] = [];
  let version = 1;
  let conflict = false;
  const server: DraftApi = {
    async create(f) {
      calls.push(`create ${f.body}`);
      await new Promise((r) => setTimeout(r, 5));
      return { email_id: 42 };
    },
    async update(id, f, v) {
      calls.push(`update ${id} v${v} ${f.body}`);
      if (conflict) throw new ApiError({ status: 412, code: "precondition_failed" });
      return { version: ++version };
    },
  };
  return { server, calls, conflictNext: () => void (conflict = true) };
}

describe("draft autosave", () => {
  it("creates once, then updates with the version it last saw", async () => {
    const { server, calls } = fakeServer();
    const states: string[] = [];
    const d = new Draft(server, (s) => states.push(s));
    // Two saves at once: the second waits for the first, so there is one create.
    await Promise.all([d.save(fields("a")), d.save(fields("ab"))]);
    await d.save(fields("ab")); // unchanged: nothing sent
    await d.save(fields("abc"));
    expect(calls).toEqual(["create a", "update 42 v1 ab", "update 42 v2 abc"]);
    expect(d.id).toBe(42);
    expect(d.version).toBe(3);
    expect(states.at(-1)).toBe("saved");
  });
  it("does not store the opening content until it is edited", async () => {
    const { server, calls } = fakeServer();
    const d = new Draft(server, undefined, fields("-- \nsig"));
    await d.save(fields("-- \nsig"));
    expect(calls).toEqual([]);
    await d.save(fields("Hello\n-- \nsig"));
    expect(calls).toEqual(["create Hello\n-- \nsig"]);
  });
  it("stops after an edit made elsewhere (412) instead of overwriting it", async () => {
    const { server, calls, conflictNext } = fakeServer();
    const d = new Draft(server);
    await d.save(fields("a"));
    conflictNext();
    await d.save(fields("b"));
    expect(d.state).toBe("conflict");
    await d.save(fields("c"));
    expect(calls).toEqual(["create a", "update 42 v1 b"]);
  });
});


describe("rich-text compose", () => {
  it("turns the plain text into editor markup, escaped, line by line", () => {
    expect(textToHtml("a <b>\n\n-- \nme & co")).toBe("<div>a &lt;b&gt;</div><div><br></div><div>-- </div><div>me &amp; co</div>");
  });
  it("accepts only links the reader keeps", () => {
    expect(linkTarget("https://example.org/x")).toBe("https://example.org/x");
    expect(linkTarget("bob@example.org")).toBe("mailto:bob@example.org");
    expect(linkTarget("example.org/path")).toBe("https://example.org/path");
    expect(linkTarget("javascript:alert(1)")).toBeNull();
    expect(linkTarget("  ")).toBeNull();
  });
});

describe("contacts and keys", () => {
  it("shows a fingerprint's key id in groups", () => {
    expect(shortFingerprint("AB12 CD34 EF56 7890 1122 3344 5566 7788 99AA BBCC")).toBe("5566 7788 99AA BBCC");
  });
  it("knows an armored key when it sees one", () => {
    expect(looksArmored("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQ\n-----END PGP PUBLIC KEY BLOCK-----")).toBe(true);
    expect(looksArmored("mQINBF...")).toBe(false);
  });
});
