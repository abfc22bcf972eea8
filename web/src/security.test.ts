import { describe, expect, it } from "vitest";
import { loginBody, loginError } from "./ui";
import { ApiError } from "./api";
import { groupSecret, svgDataUrl } from "./mail/Security";

describe("second factor", () => {
  it("sends the one-time code only once asked for", () => {
    expect(loginBody("a@x.org", "pw", "")).toEqual({ username: "a@x.org", password: "pw" });
    expect(loginBody("a@x.org", "pw", " 123 456 ")).toEqual({ username: "a@x.org", password: "pw", otp: "123 456" });
  });
  it("never says which of name, password or code was wrong", () => {
    const e = new ApiError({ status: 401, code: "unauthenticated" });
    expect(loginError(e, false)).toBe("Wrong name or password.");
    expect(loginError(e, true)).toBe("Wrong name, password or code.");
    expect(loginError(new Error("offline"), true)).toBe("offline");
  });
  it("shows the QR code as a data URL and the key in groups", () => {
    const url = svgDataUrl('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0h1"/></svg>');
    expect(url.startsWith("data:image/svg+xml;charset=utf-8,%3Csvg")).toBe(true);
    expect(url).not.toContain("<");
    expect(groupSecret("JBSWY3DPEHPK3PXPJBSW")).toBe("JBSW Y3DP EHPK 3PXP JBSW");
  });
});
