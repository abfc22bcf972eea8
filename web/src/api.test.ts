import { describe, expect, it } from "vitest";
import { problemMessage } from "./api";

describe("problemMessage", () => {
  it("names each bad field by the server's loc, never 'undefined'", () => {
    const text = problemMessage({
      status: 422,
      code: "invalid_params",
      detail: "to: a message to send needs at least one recipient (and 1 more)",
      errors: [
        { loc: "to", message: "a message to send needs at least one recipient" },
        { loc: "subject", message: "too long" },
      ],
    });
    expect(text).toBe("to: a message to send needs at least one recipient (and 1 more) — subject: too long");
    expect(text).not.toContain("undefined");
  });
  it("falls back to the title and code", () => {
    expect(problemMessage({ status: 500, code: "internal_error" })).toBe("internal_error");
    expect(problemMessage({ status: 404, code: "not_found", title: "Not found" })).toBe("Not found");
  });
});
